"""A URLconf whose webhook names an endpoint that is not configured (for hookshield.E007)."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from hookshield.django import webhook


@webhook("ghost")
def ghost(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


urlpatterns = [path("nested/", include([path("ghost/", ghost)])), path("", include("tests.urls"))]
