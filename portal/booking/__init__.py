"""The booking domain: the slot engine, the booking service and what a booking carries."""
