"""The roster: teams, reps, their provider identities and their team history (admin routes)."""
