"""The app's urls plus the two reference views the benchmarks compare it with."""

from django.urls import include, path

from . import naive, raw

urlpatterns = [
    path("bench/raw/<str:business_id>", raw.raw_insert, name="bench-raw"),
    path("bench/naive", naive.NaiveEventView.as_view(), name="bench-naive"),
    path("", include("refairn.urls")),
]
