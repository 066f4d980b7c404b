"""URL routes: Django admin for now; the ops API mounts here as it lands."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
