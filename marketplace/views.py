from django.shortcuts import render

from marketplace.models import Listing


def catalogue(request):
    listings = Listing.objects.filter(status=Listing.Status.ACTIVE).select_related("brand")[:50]
    return render(request, "marketplace/catalogue.html", {"listings": listings})
