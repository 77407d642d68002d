"""The roles a user may hold. Every user is a learner; the others are granted (Entra app roles).

They live here, below every feature, because access checks (``lms.common.access``) and every
area's pages speak of them; ``lms.auth.models`` stores them.
"""

LEARNER = "learner"
TRAINER = "trainer"
MUNICIPAL_ADMIN = "municipal_admin"
PLATFORM_ADMIN = "platform_admin"
ROLES = (LEARNER, TRAINER, MUNICIPAL_ADMIN, PLATFORM_ADMIN)
