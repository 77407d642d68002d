"""The integration API (/api/v1): machine clients of the municipalities' HR systems and of the
metropolitan government, authenticated with Microsoft Entra app-only access tokens."""
