"""Who is calling: organizations, users, API tokens and access keys."""
