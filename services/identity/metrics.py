"""Identity's own metrics (HTTP metrics come from shared.metrics)."""
from prometheus_client import Counter

SIGN_INS = Counter("threshold_identity_sign_ins_total", "Sign-in attempts by method and result",
                   ["method", "result"])
