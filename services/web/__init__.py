"""Hosted pages: sign-up, sign-in, onboarding and settings in the browser, a backend-for-frontend over
identity's and tenancy's HTTP APIs that owns the browser session."""
