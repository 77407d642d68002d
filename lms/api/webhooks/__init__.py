"""Webhooks of the integration API: endpoints registered by the platform admins (every
municipality's events) or by a municipality's training office (its own), events queued in the
transaction of the change that caused them, delivered by the worker, signed per the Standard
Webhooks specification (https://www.standardwebhooks.com/). See docs/api.md, "Webhooks"."""
