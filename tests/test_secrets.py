"""Secret masking: the table is the specification. Each secret form is masked and the text
around it kept; ordinary operator text is left exactly as written."""

from __future__ import annotations

import pytest

from console.model.secrets import redact

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n" \
      "-----END OPENSSH PRIVATE KEY-----"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
       "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")


@pytest.mark.parametrize(("text", "leak", "kept"), [
    pytest.param(f"pasted by mistake {KEY} oops", "b3BlbnNzaC1rZXktdjEAAAAA", "oops",
                 id="pem-block"),
    pytest.param("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA (cut)", "MIIEpAIBAAKCAQEA",
                 "", id="pem-cut-short"),
    pytest.param("bmc password=hunter2, retry", "hunter2", "retry", id="password-eq"),
    pytest.param("use token: abc.def.ghi now", "abc.def.ghi", "now", id="token-colon"),
    pytest.param("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY go",
                 "wJalrXUtnFEMI", "go", id="aws-secret-env"),
    pytest.param("export DB_PASSWORD='s3cr3t!' then", "s3cr3t", "then", id="quoted-env"),
    pytest.param('client_secret: "Zm9vYmFyYmF6" end', "Zm9vYmFyYmF6", "end", id="yaml-secret"),
    pytest.param("GITHUB_TOKEN=abcdef123456 ok", "abcdef123456", "ok", id="github-env"),
    pytest.param("api-key: 9f8e7d6c5b4a ok", "9f8e7d6c5b4a", "ok", id="api-key-dash"),
    pytest.param("AKIAIOSFODNN7EXAMPLE was used", "AKIAIOSFODNN7EXAMPLE", "used",
                 id="aws-access-key-id"),
    pytest.param("Authorization: Bearer eyJhbGciOi.x.y", "eyJhbGciOi", "Authorization",
                 id="auth-bearer"),
    pytest.param("Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l done", "YWxhZGRpbjpvcGVuc2VzYW1l",
                 "done", id="auth-basic"),
    pytest.param("proxy-authorization=Digest abc123def456 x", "abc123def456", "x",
                 id="proxy-auth"),
    pytest.param("curl -H 'bearer abcdefghijklmnop' api", "abcdefghijklmnop", "api",
                 id="bare-bearer"),
    pytest.param("mirror https://ops:hunter2@repo.example/simple down", "hunter2",
                 "repo.example/simple down", id="url-password"),
    pytest.param("postgres://svc:p%40ss@db:5432/x", "p%40ss", "db:5432/x", id="dsn-password"),
    pytest.param(f"cookie {JWT} expired", "dozjgNryP4J3jVmNHl0w5N", "expired", id="jwt"),
    pytest.param("API_KEY=sk-123456 set", "sk-123456", "set", id="short-sk-in-env"),
    pytest.param("key sk-proj-AbCdEfGhIjKlMnOpQrStUvWx leaked", "AbCdEfGhIjKlMnOp", "leaked",
                 id="openai-sk"),
    pytest.param("sk-ant-api03-AbCdEfGhIjKlMnOpQrSt x", "AbCdEfGhIjKlMnOp", "x", id="anthropic"),
    pytest.param("pushed with ghp_0123456789abcdefghijABCDEFGHIJ", "ghp_0123456789", "pushed",
                 id="github-pat"),
    pytest.param("github_pat_11ABCDEFG0123456789abcdefghijkl x", "11ABCDEFG0123456789", "x",
                 id="github-fine-grained"),
    pytest.param("glpat-AbCdEfGhIjKlMnOpQrSt runner", "AbCdEfGhIjKlMnOpQrSt", "runner",
                 id="gitlab-pat"),
    pytest.param("xoxb-1234567890-abcdefghij slack", "1234567890-abcdefghij", "slack",
                 id="slack"),
    pytest.param("hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456 model", "AbCdEfGhIjKlMnOp", "model",
                 id="huggingface"),
    pytest.param("AIzaSyA-1234567890abcdefghijklmnopqrstu maps", "AIzaSyA-123", "maps",
                 id="google-api-key"),
    pytest.param("the password is hunter2 for the bmc", "hunter2", "for the bmc",
                 id="password-is"),
    pytest.param("Token was 8c1f9e2d, rotate it", "8c1f9e2d", "rotate it", id="token-was"),
    pytest.param("key at /home/ops/.ssh/id_ed25519 failed", ".ssh/id_ed25519", "failed",
                 id="ssh-key-path"),
    pytest.param("ssh -i ~/.ssh/fleet node1", "fleet", "node1", id="ssh-dir"),
])
def test_secrets_are_masked(text, leak, kept):
    masked = redact(text)
    assert leak not in masked and "redacted" in masked and kept in masked


@pytest.mark.parametrize("text", [
    pytest.param("drain hz-h100-03: Xid 79 twice, ticket OPS-1234, password rotation tomorrow",
                 id="operator-reason"),
    pytest.param("move j-1045 to domestic: the 910B pool has room (see https://wiki/ops/rma)",
                 id="plain-url"),
    pytest.param("RMA, do not use; secret sauce is patience", id="words-not-secrets"),
    pytest.param("tokens per second dropped 40% after Xid 48", id="tokens-plural"),
    pytest.param("ssh hz-node-3 failed: permission denied (publickey)", id="ssh-error"),
    pytest.param("skip sk-1 and sk-2 nodes", id="short-sk-names"),
])
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text
