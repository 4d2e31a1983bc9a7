"""The fault-and-bad-input campaign of issue 16: random op configurations against torch and
loop references, NaN/Inf inputs, malformed arguments, resource bombs and malformed command
lines, each classified as correct / clear error / unclear error / silent wrong.

Run it by hand with ``python -m tests.campaign`` (see ``__main__``); ``test_campaign.py``
runs a small sample, and a hypothesis property, in the test suite.
"""
