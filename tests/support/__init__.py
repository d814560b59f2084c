"""Helpers the tests share: line files, the test harness, servers, a local Twilio, deployments."""
