from django.shortcuts import render


def canvas(request):
    return render(request, "designer/canvas.html")


def catalog(request):
    return render(request, "designer/catalog.html")
