from django.urls import path

from hookshield.demo.project.views import naive_payment, shielded_payment

urlpatterns = [
    path("naive/payments/", naive_payment),
    path("shielded/payments/", shielded_payment),
]
