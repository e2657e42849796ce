"""Staff accounts: sign-in, sessions, structures, permissions and the back office."""
