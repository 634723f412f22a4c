"""A loopback fake of the AWS calls `ark doctor` makes besides InvokeAgent, on the real wire.

One aiohttp server on 127.0.0.1 answers three protocols, so one `endpoint_url` serves them all
(point `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL_BEDROCK_AGENT` and `AWS_ENDPOINT_URL_FIREHOSE`
at it; the real aiobotocore clients sign, send and parse exactly as against AWS):

* STS ``GetCallerIdentity``: query protocol (``POST /``, form body ``Action=...``), XML answer;
* bedrock-agent ``GetAgentAlias``: REST-JSON ``GET /agents/{agentId}/agentaliases/{aliasId}/``;
* Firehose ``DescribeDeliveryStream``: JSON 1.1 (``POST /`` with
  ``X-Amz-Target: Firehose_20150804.DescribeDeliveryStream``).

By default each operation answers from the fake's data (`caller`, `add_alias`, `add_stream`);
an alias or stream that was not added answers ResourceNotFoundException, as AWS does.
`set_outcome(operation, ...)` scripts an operation: "ok" (the default), "denied" (AccessDenied),
"not_found", "hang" (never answers until the fake stops) or any `AwsError`.

    async with FakeAwsControl() as aws:
        aws.add_alias("AGENT12345", "ALIAS12345", name="live")
        aws.set_outcome(DESCRIBE_DELIVERY_STREAM, "denied")
        ...  # clients with endpoint_url=aws.endpoint_url
        assert aws.calls[0].operation == GET_CALLER_IDENTITY
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import orjson
from aiohttp import web

from tests.fakes.server import LoopbackServer

GET_CALLER_IDENTITY = "GetCallerIdentity"
GET_AGENT_ALIAS = "GetAgentAlias"
DESCRIBE_DELIVERY_STREAM = "DescribeDeliveryStream"
OPERATIONS = (GET_CALLER_IDENTITY, GET_AGENT_ALIAS, DESCRIBE_DELIVERY_STREAM)
FIREHOSE_TARGET_PREFIX = "Firehose_20150804."
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
JSON_11_CONTENT_TYPE = "application/x-amz-json-1.1"
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_ARN = f"arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/ark-task/fake-session"
DEFAULT_USER_ID = "AROAFAKEFAKEFAKEFAKE:fake-session"
# IAM action named in each operation's AccessDenied message, as AWS words it.
_ACTIONS = {
    GET_CALLER_IDENTITY: "sts:GetCallerIdentity",
    GET_AGENT_ALIAS: "bedrock:GetAgentAlias",
    DESCRIBE_DELIVERY_STREAM: "firehose:DescribeDeliveryStream",
}


@dataclass(frozen=True, slots=True)
class AwsError:
    """A scripted error answer: the service's error code, HTTP status and message."""

    code: str
    status: int = 400
    message: str = "scripted error"


Outcome = Literal["ok", "denied", "not_found", "hang"] | AwsError


@dataclass(frozen=True, slots=True)
class ControlCall:
    """One request as the fake received it. `region` and `service` come from the SigV4
    credential scope of the Authorization header (None when unsigned)."""

    operation: str
    params: dict[str, Any]
    region: str | None
    service: str | None
    access_key_id: str | None
    at: float


@dataclass(slots=True)
class Alias:
    agent_id: str
    alias_id: str
    name: str = "live"
    status: str = "PREPARED"
    agent_version: str = "1"
    invocation_state: str | None = "ACCEPT_INVOCATIONS"
    failure_reasons: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Stream:
    name: str
    status: str = "ACTIVE"
    stream_type: str = "DirectPut"


@dataclass(slots=True)
class Caller:
    account: str = DEFAULT_ACCOUNT
    arn: str = DEFAULT_ARN
    user_id: str = DEFAULT_USER_ID


def _credential_scope(headers: Any) -> tuple[str | None, str | None, str | None]:
    """(access key id, region, service) from `Credential=AKID/date/region/service/aws4_request`."""
    auth = headers.get("Authorization", "")
    _, _, rest = auth.partition("Credential=")
    scope = rest.split(",", 1)[0].strip()
    parts = scope.split("/")
    if len(parts) != 5:
        return None, None, None
    return parts[0], parts[2], parts[3]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class FakeAwsControl(LoopbackServer):
    """STS, bedrock-agent GetAgentAlias and Firehose DescribeDeliveryStream on 127.0.0.1."""

    def __init__(self) -> None:
        super().__init__()
        self.caller = Caller()
        self.aliases: dict[tuple[str, str], Alias] = {}
        self.streams: dict[str, Stream] = {}
        self.calls: list[ControlCall] = []
        self._outcomes: dict[str, Outcome] = {}

    # lifecycle

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self._post)
        app.router.add_get("/agents/{agent_id}/agentaliases/{alias_id}/", self._get_agent_alias)
        return app

    # scripting and data

    def set_outcome(self, operation: str, outcome: Outcome) -> None:
        """Every later call to `operation` answers `outcome` (until set again)."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}")
        if operation == GET_CALLER_IDENTITY and outcome == "not_found":
            raise ValueError("GetCallerIdentity has no not-found answer")
        self._outcomes[operation] = outcome

    def add_alias(self, agent_id: str, alias_id: str, **fields: Any) -> Alias:
        alias = Alias(agent_id, alias_id, **fields)
        self.aliases[(agent_id, alias_id)] = alias
        return alias

    def add_stream(self, name: str, **fields: Any) -> Stream:
        stream = Stream(name, **fields)
        self.streams[name] = stream
        return stream

    def calls_to(self, operation: str) -> list[ControlCall]:
        return [c for c in self.calls if c.operation == operation]

    # dispatch

    async def _post(self, request: web.Request) -> web.StreamResponse:
        target = request.headers.get("X-Amz-Target", "")
        if target:
            body = orjson.loads(await request.read() or b"{}")
            operation = target.removeprefix(FIREHOSE_TARGET_PREFIX)
            self._record(request, operation, body)
            if operation != DESCRIBE_DELIVERY_STREAM:
                return self._json11_error(AwsError("UnknownOperationException", 400, target))
            return await self._describe_delivery_stream(body)
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        operation = form.get("Action", "")
        self._record(request, operation, form)
        if operation != GET_CALLER_IDENTITY:
            return self._query_error(AwsError("InvalidAction", 400, f"unknown action {operation}"))
        return await self._get_caller_identity()

    def _record(self, request: web.Request, operation: str, params: dict[str, Any]) -> None:
        key_id, region, service = _credential_scope(request.headers)
        self.calls.append(ControlCall(operation, params, region, service, key_id, time.monotonic()))

    async def _scripted_error(self, operation: str, resource: str) -> AwsError | None:
        """The error to answer, None for a normal answer; waits forever on "hang"."""
        outcome = self._outcomes.get(operation, "ok")
        if outcome == "hang":
            await self._stopping.wait()
            return AwsError("ServiceUnavailableException", 503, "fake stopping")
        if outcome == "denied":
            code = "AccessDenied" if operation == GET_CALLER_IDENTITY else "AccessDeniedException"
            status = 400 if operation == DESCRIBE_DELIVERY_STREAM else 403
            message = (
                f"User: {self.caller.arn} is not authorized to perform: {_ACTIONS[operation]} "
                f"on resource: {resource} because no identity-based policy allows the "
                f"{_ACTIONS[operation]} action"
            )
            return AwsError(code, status, message)
        if outcome == "not_found":
            status = 400 if operation == DESCRIBE_DELIVERY_STREAM else 404
            return AwsError("ResourceNotFoundException", status, f"{resource} not found")
        if isinstance(outcome, AwsError):
            return outcome
        return None

    # STS (query protocol, XML)

    async def _get_caller_identity(self) -> web.Response:
        error = await self._scripted_error(GET_CALLER_IDENTITY, "*")
        if error is not None:
            return self._query_error(error)
        c = self.caller
        xml = (
            f'<GetCallerIdentityResponse xmlns="{STS_NAMESPACE}">'
            "<GetCallerIdentityResult>"
            f"<Arn>{escape(c.arn)}</Arn><UserId>{escape(c.user_id)}</UserId>"
            f"<Account>{escape(c.account)}</Account>"
            "</GetCallerIdentityResult>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        )
        return web.Response(text=xml, content_type="text/xml")

    @staticmethod
    def _query_error(error: AwsError) -> web.Response:
        xml = (
            f'<ErrorResponse xmlns="{STS_NAMESPACE}"><Error><Type>Sender</Type>'
            f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
            f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
        return web.Response(status=error.status, text=xml, content_type="text/xml")

    # bedrock-agent (REST-JSON)

    async def _get_agent_alias(self, request: web.Request) -> web.Response:
        agent_id, alias_id = request.match_info["agent_id"], request.match_info["alias_id"]
        self._record(request, GET_AGENT_ALIAS, {"agentId": agent_id, "agentAliasId": alias_id})
        arn = f"arn:aws:bedrock:us-east-1:{self.caller.account}:agent-alias/{agent_id}/{alias_id}"
        error = await self._scripted_error(GET_AGENT_ALIAS, arn)
        alias = self.aliases.get((agent_id, alias_id))
        if error is None and alias is None:
            error = AwsError("ResourceNotFoundException", 404, f"Agent alias {alias_id} not found")
        if error is not None:
            return web.Response(
                status=error.status,
                body=orjson.dumps({"message": error.message}),
                headers={
                    "Content-Type": "application/json",
                    "x-amzn-ErrorType": f"{error.code}:http://internal.amazon.com/coral/",
                    "x-amzn-RequestId": str(uuid.uuid4()),
                },
            )
        assert alias is not None
        now = _iso(time.time())
        doc: dict[str, Any] = {
            "agentId": agent_id,
            "agentAliasId": alias_id,
            "agentAliasName": alias.name,
            "agentAliasArn": arn,
            "routingConfiguration": [{"agentVersion": alias.agent_version}],
            "createdAt": now,
            "updatedAt": now,
            "agentAliasStatus": alias.status,
        }
        if alias.invocation_state is not None:
            doc["aliasInvocationState"] = alias.invocation_state
        if alias.failure_reasons:
            doc["failureReasons"] = alias.failure_reasons
        return web.Response(
            body=orjson.dumps({"agentAlias": doc}),
            headers={"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4())},
        )

    # Firehose (JSON 1.1)

    async def _describe_delivery_stream(self, body: dict[str, Any]) -> web.Response:
        name = str(body.get("DeliveryStreamName", ""))
        arn = f"arn:aws:firehose:us-east-1:{self.caller.account}:deliverystream/{name}"
        error = await self._scripted_error(DESCRIBE_DELIVERY_STREAM, arn)
        stream = self.streams.get(name)
        if error is None and stream is None:
            error = AwsError(
                "ResourceNotFoundException",
                400,
                f"Firehose {name} under account {self.caller.account} not found.",
            )
        if error is not None:
            return self._json11_error(error)
        assert stream is not None
        description = {
            "DeliveryStreamName": name,
            "DeliveryStreamARN": arn,
            "DeliveryStreamStatus": stream.status,
            "DeliveryStreamType": stream.stream_type,
            "VersionId": "1",
            "CreateTimestamp": time.time(),
            "Destinations": [],
            "HasMoreDestinations": False,
        }
        return web.Response(
            body=orjson.dumps({"DeliveryStreamDescription": description}),
            content_type=JSON_11_CONTENT_TYPE,
        )

    @staticmethod
    def _json11_error(error: AwsError) -> web.Response:
        return web.Response(
            status=error.status,
            body=orjson.dumps({"__type": error.code, "message": error.message}),
            content_type=JSON_11_CONTENT_TYPE,
        )
