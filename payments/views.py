from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def notify(request, account_code):
    return HttpResponse(status=404)
