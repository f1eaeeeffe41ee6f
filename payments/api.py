from rest_framework.views import APIView


class OrderPayView(APIView):
    pass
