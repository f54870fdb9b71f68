"""The peers Threshold is measured against, each installed by the bench into its own environment under
var/bench-peers/ and served on loopback beside identity."""
