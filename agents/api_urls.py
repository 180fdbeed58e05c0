"""``/api/programs``, ``/api/agents``, ``/api/enrollments``: the management API (Bearer key)."""

from django.urls import path

from . import api

urlpatterns = [
    path("api/programs", api.ProgramListView.as_view(), name="api-programs"),
    path("api/programs/<str:program_id>", api.ProgramDetailView.as_view(), name="api-program"),
    path("api/agents", api.AgentListView.as_view(), name="api-agents"),
    path("api/agents/<str:agent_id>", api.AgentDetailView.as_view(), name="api-agent"),
    path("api/enrollments", api.EnrollmentListView.as_view(), name="api-enrollments"),
    path("api/enrollments/<str:enrollment_id>", api.EnrollmentDetailView.as_view(), name="api-enrollment"),
    path("api/enrollments/<str:enrollment_id>/approve", api.EnrollmentApproveView.as_view(),
         name="api-enrollment-approve"),
    path("api/enrollments/<str:enrollment_id>/reject", api.EnrollmentRejectView.as_view(),
         name="api-enrollment-reject"),
    path("api/enrollments/<str:enrollment_id>/remove", api.EnrollmentRemoveView.as_view(),
         name="api-enrollment-remove"),
]
