"""[judge] An LLM judge of blind pairs, measured against the team's own experts before anyone trusts it."""
