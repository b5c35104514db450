"""pytest plugin of hwkit (entry point ``pytest11``); filled in by the conformance kit."""
