from django.shortcuts import render


def dashboard(request):
    return render(request, "monitor/dashboard.html")


def dead_letters(request):
    return render(request, "monitor/dead_letters.html")
