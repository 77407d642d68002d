"""Imports every model, so that Alembic and create_all see the whole schema."""

from lms.activities.models import Activity, ActivityQuestion, ActivitySubmission, AnonymousAnswer  # noqa: F401
from lms.api.models import ApiClient, RosterJob, RosterJobPart, RosterJobRow  # noqa: F401
from lms.api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage  # noqa: F401
from lms.archives.models import (  # noqa: F401
    Archive,
    ArchiveFile,
    ArchiveMunicipality,
    TranscriptCue,
    UploadSession,
    ViewingClock,
    ViewingProgress,
)
from lms.attendance.models import Attendance, AttendanceRecord, AttendanceUpload  # noqa: F401
from lms.audit.models import AuditLog  # noqa: F401
from lms.auth.models import User, UserRole, UserSession  # noqa: F401
from lms.common.once import FormSubmission  # noqa: F401
from lms.completion.models import Completion, MandatoryAssignment  # noqa: F401
from lms.courses.models import Category, Course, CourseEligibility, SessionQuota, TrainingSession  # noqa: F401
from lms.enrollment.models import Enrollment  # noqa: F401
from lms.municipalities.models import Municipality, TenantMapping  # noqa: F401
from lms.notifications.models import OutboxMail  # noqa: F401
from lms.planning.models import (  # noqa: F401
    FeeStatement,
    FeeStatementLine,
    PlanAllocation,
    PlanCourseFee,
    PlanDemand,
    PlanFeeExemption,
    SeatExchange,
    TrainingPlan,
)
from lms.roster.models import StaffHistory, StaffMember  # noqa: F401
from lms.sitepages.models import SitePage  # noqa: F401
from lms.teams.models import GraphOperation, GraphSubscription  # noqa: F401
from lms.teams.viva.models import VivaActivity, VivaContent, VivaTenant  # noqa: F401
