"""Everything JupyterHub: its HTTP client, who owns a hub token (cached), the OAuth sign-in,
and course rosters from hub groups. The API and the web pages call this package; the domain
(``courses``) never does."""
