from django.shortcuts import render


def canvas(request):
    return render(request, "designer/canvas.html")
