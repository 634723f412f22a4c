"""`make bench`: Ark against a minimal Bolt bot on loopback fakes (see __main__)."""
