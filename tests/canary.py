"""A key-shaped canary: tests assert it never appears in any output, error, repr or log line."""

CANARY_KEY = "VF.DM.0123456789abcdef01234567.CanarySecretDoNotLeak42"
CANARY_SECRET = "CanarySecretDoNotLeak42"
