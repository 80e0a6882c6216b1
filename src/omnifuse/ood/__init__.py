"""Out-of-distribution scores per input and the reliability gate that fuses a flagged input as missing."""
