from django.contrib.auth.middleware import LoginRequiredMiddleware as _LoginRequired


class LoginRequiredMiddleware(_LoginRequired):
    """Every page needs a login, except those marked @login_not_required.

    The REST API is left to DRF, which also accepts tokens and answers 401/403
    instead of redirecting a machine client to the login page.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
