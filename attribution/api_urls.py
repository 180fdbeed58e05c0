"""``/api/customers``: attribution reads (Bearer key)."""

from django.urls import path

from . import api

urlpatterns = [
    path("api/customers", api.CustomerListView.as_view(), name="api-customers"),
    path("api/customers/<str:customer_id>", api.CustomerDetailView.as_view(), name="api-customer"),
]
