"""Public, unauthenticated routes of attribution: the referral link."""

from django.urls import path

from . import views

urlpatterns = [
    path("r/<str:code>", views.referral_link, name="referral-link"),
    path("r/<str:code>/", views.referral_link),
]
