"""Browser tests of the coordinator console, and the test data they share."""
