"""Running a team: organisation settings, people, invitations, passwords and find-a-time."""
