"""What the tests share: example payloads, the malformed-request catalogue, fakes, metric
parsing, live-server and tool helpers. Tests import from here, never from conftest modules."""
