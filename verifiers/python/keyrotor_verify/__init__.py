"""Checks keyrotor API keys against a verifier document, which holds only their hashes.

    from keyrotor_verify import follow_verifier

    verifier = follow_verifier("/etc/keyrotor/verifier.json")
    result = verifier.verify(presented_key, scope="prices:read")
    if not result.valid:
        ...  # 401 for Malformed, Unknown, Expired; 403 for InsufficientScope
"""

from .document import (
    VERIFIER_API_VERSION,
    VERIFIER_FILE,
    Consumer,
    VerifierDocument,
    VerifierDocumentError,
    VerifierEntry,
    parse_verifier_document,
)
from .follow import FollowedVerifier, follow_verifier
from .keys import (
    ENVIRONMENT_TAGS,
    KEY_PATTERN,
    Environment,
    KeyProblem,
    ParsedKey,
    ParseResult,
    format_key,
    key_hash,
    key_id,
    parse_key,
)
from .verifier import Reason, Verifier, VerifyResult, scope_granted

__all__ = [
    "ENVIRONMENT_TAGS",
    "KEY_PATTERN",
    "VERIFIER_API_VERSION",
    "VERIFIER_FILE",
    "Consumer",
    "Environment",
    "FollowedVerifier",
    "KeyProblem",
    "ParseResult",
    "ParsedKey",
    "Reason",
    "Verifier",
    "VerifierDocument",
    "VerifierDocumentError",
    "VerifierEntry",
    "VerifyResult",
    "follow_verifier",
    "format_key",
    "key_hash",
    "key_id",
    "parse_key",
    "scope_granted",
]
