"""Everything that faces Amazon Bedrock."""
