"""The REST API, /api/v1/: Django REST framework views over the same services and selectors
as the HTML views. Token auth for scripts, session auth for the browser."""
