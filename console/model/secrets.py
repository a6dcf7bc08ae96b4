"""Masking secrets in free text (reasons, outcomes, engine messages) before anything keeps it.

Operators paste: a reason may carry a BMC password, a token from a runbook or a URL with
credentials. Whatever is masked here never reaches the journal, the engine (node reasons), the
audit log or a screen. The patterns are the common forms, each kept narrow enough that
ordinary operator text ("password rotation tomorrow", "Xid 79 twice") stays as written; the
table in tests/test_secrets.py is the specification.
"""

from __future__ import annotations

import re
from typing import Any

# Names that say "this value is a secret" in key=value / key: value / KEY="value" forms:
# AWS_SECRET_ACCESS_KEY, DB_PASSWORD, GITHUB_TOKEN, client_secret, api-key, ...
_SECRET_NAME = (r"[A-Za-z0-9_.-]*(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|"
                r"access[_-]?key|private[_-]?key|credentials?|auth[_-]?key|session[_-]?key)"
                r"[A-Za-z0-9_.-]*")

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A PEM private key block (or its start, when the text was cut before the END line).
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?"
                r"(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S), "[redacted private key]"),
    # HTTP authorization headers, whatever the scheme.
    (re.compile(r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*)"
                r"(?:(basic|bearer|token|digest|negotiate)\s+)?[^\s,;]+"),
     lambda m: f"{m[1]}{m[2] + ' ' if m[2] else ''}[redacted]"),  # type: ignore[dict-item]
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/-]+=*"), r"\1 [redacted]"),
    # A URL with a password: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@"), r"\1[redacted]@"),
    # JSON Web Tokens: three base64url parts, the first two JSON objects ("eyJ").
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
     "[redacted jwt]"),
    # Tokens recognisable by their prefix: OpenAI/Anthropic sk-, GitHub, GitLab, Slack, AWS
    # access key ids, Google API keys, Hugging Face, PyPI, npm.
    (re.compile(r"\b(?:sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|"
                r"github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}|"
                r"xox[abprs]-[A-Za-z0-9-]{10,}|(?:AKIA|ASIA)[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}|"
                r"hf_[A-Za-z0-9]{30,}|pypi-[A-Za-z0-9_-]{40,}|npm_[A-Za-z0-9]{36})"),
     "[redacted token]"),
    # key=value, key: value, KEY="value"
    (re.compile(rf"(?i)\b({_SECRET_NAME})(\s*[=:]\s*)([\"']?)[^\s\"',;]+\3"),
     r"\1\2\3[redacted]\3"),
    # "the password is hunter2", "token was abc"
    (re.compile(r"(?i)\b(password|passwd|passphrase|secret|token|pin)(\s+(?:is|was)\s+)"
                r"[\"']?[^\s\"',;]+[\"']?"), r"\1\2[redacted]"),
    # SSH key files: where a key lives is nobody's business in an audit log.
    (re.compile(r"[^\s'\"]*\.ssh/[^\s'\",;]+|[^\s'\"]*\bid_(?:rsa|dsa|ecdsa|ed25519)\b[^\s'\",;]*"),
     "[redacted ssh path]"),
)


def redact(text: str) -> str:
    """`text` with private keys, credentials, tokens and SSH key paths masked."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)  # type: ignore[arg-type]
    return text


def redact_all(value: Any) -> Any:
    """redact() through dicts, lists and tuples (plans as the audit log stores them)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_all(v) for v in value]
    return value
