"""End to end: rendered answers reach the loopback Slack as Block Kit, and a rejected
payload falls back to mrkdwn text exactly once."""

from __future__ import annotations

from tests.e2e_harness import running_ark
from tests.fakes.bedrock import Chunk

ANSWER = """Here are the **Q3** numbers:

| Region | Revenue |
|:--|--:|
| EMEA | 1.2M |
| APAC | *0.9M* |

Run this to refresh them:

```python
print(load("q3") * 2)
```

Ask <!channel> if unsure."""

CITATION = {
    "generatedResponsePart": {
        "textResponsePart": {"text": "numbers", "span": {"start": 0, "end": 26}}
    },
    "retrievedReferences": [
        {
            "location": {
                "type": "WEB",
                "webLocation": {"url": "https://intranet.example.com/finance/q3"},
            },
            "metadata": {"x-amz-bedrock-kb-title": "Q3 finance report"},
        }
    ],
}


def _row(*cells: str) -> list[dict[str, str]]:
    return [{"type": "raw_text", "text": cell} for cell in cells]


def _markdown_of(post) -> str:
    return "\n".join(b["text"] for b in post.json_field("blocks") or [] if b["type"] == "markdown")


async def test_table_code_and_sources_arrive_as_blocks(slack, bedrock, monkeypatch):
    bedrock.queue_script([Chunk(ANSWER, citations=[CITATION])])
    async with running_ark(slack, bedrock, monkeypatch):
        event = slack.dm_event("q3 numbers?")
        await slack.send_event(event)
        await slack.wait_for_call("reactions.remove")
        first, second = slack.posts
        assert all(p.params["thread_ts"] == event["ts"] for p in (first, second))
        assert first.json_field("blocks") == [
            {"type": "markdown", "text": "Here are the **Q3** numbers:[1]"},
            {
                "type": "table",
                "column_settings": [{"align": "left"}, {"align": "right"}],
                "rows": [_row("Region", "Revenue"), _row("EMEA", "1.2M"), _row("APAC", "0.9M")],
            },
        ]
        assert first.params["text"].startswith("Here are the Q3 numbers:[1]")
        (markdown,) = [b for b in second.json_field("blocks")]
        assert markdown["type"] == "markdown"
        assert markdown["text"] == (
            "Run this to refresh them:\n\n"
            '```python\nprint(load("q3") * 2)\n```\n\n'
            "Ask <\u200b!channel> if unsure.\n\n"
            "**Sources**\n\n1. [Q3 finance report](https://intranet.example.com/finance/q3)"
        )


async def test_rejected_blocks_fall_back_to_text_exactly_once(slack, bedrock, monkeypatch):
    bedrock.queue_script([Chunk(ANSWER, citations=[CITATION])])
    slack.fail_next("chat.postMessage", "invalid_blocks")
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_event(slack.dm_event("q3 numbers?"))
        await slack.wait_for_call("reactions.remove")
        rejected, *fallback = slack.posts
        assert rejected.json_field("blocks")  # the Block Kit attempt Slack refused
        assert fallback, "the answer must still arrive"
        assert all(not p.json_field("blocks") for p in fallback)
        # one mrkdwn message: the table as an aligned code block, the code verbatim (only
        # `&`, `<`, `>` escaped), the broadcast escaped and defused, the source a link
        assert [p.params["text"] for p in fallback] == [
            "Here are the *Q3* numbers:[1]\n\n"
            "```\nRegion | Revenue\n-------+--------\nEMEA   |    1.2M\nAPAC   |    0.9M\n```\n\n"
            "Run this to refresh them:\n\n"
            '```\nprint(load("q3") * 2)\n```\n\n'
            "Ask &lt;\u200b!channel&gt; if unsure.\n\n"
            "*Sources*\n\n"
            "1. <https://intranet.example.com/finance/q3|Q3 finance report>"
        ]


async def test_a_later_part_rejected_keeps_earlier_parts_and_sends_the_rest(
    slack, bedrock, monkeypatch
):
    paragraphs = [f"Section {i}. " + "lorem ipsum dolor " * 120 for i in range(12)]
    bedrock.queue_script([Chunk("\n\n".join(paragraphs))])
    slack.delay_next("chat.postMessage", 0)  # part 1 is answered normally
    slack.fail_next("chat.postMessage", "msg_blocks_too_long")  # part 2 is refused
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_event(slack.dm_event("long report"))
        await slack.wait_for_call("reactions.remove")
        posts = slack.posts
        with_blocks = [p for p in posts if p.json_field("blocks")]
        assert len(with_blocks) == 2  # part 1 accepted, part 2 refused; no more attempts
        assert posts[1] is with_blocks[1]
        shown = _markdown_of(posts[0]) + "".join(p.params["text"] for p in posts[2:])
        squeezed = shown.replace(" ", "").replace("\n", "")
        assert squeezed == "".join(paragraphs).replace(" ", "")


async def test_a_rate_limited_part_waits_and_the_parts_stay_in_order(slack, bedrock, monkeypatch):
    paragraphs = [f"Section {i}. " + "lorem ipsum dolor " * 120 for i in range(16)]
    bedrock.queue_script([Chunk("\n\n".join(paragraphs))])
    slack.delay_next("chat.postMessage", 0)  # part 1 is answered normally
    slack.rate_limit_next("chat.postMessage", retry_after=1)  # part 2: 429, Retry-After 1
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_event(slack.dm_event("long report"))
        await slack.wait_for_call("reactions.remove", timeout_s=10)
        calls = slack.calls_to("chat.postMessage")
        assert len(calls) >= 4
        assert calls[1].params == calls[2].params  # part 2, refused with 429, sent again
        assert calls[2].at - calls[1].at >= 0.9  # after Retry-After
        shown = "\n\n".join(_markdown_of(p) for p in [calls[0], *calls[2:]])
        assert shown == "\n\n".join(p.rstrip() for p in paragraphs)
