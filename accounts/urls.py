from django.urls import path

from . import second_factor_views, token_views, views

app_name = "accounts"
urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("login/verify/", second_factor_views.login_verify, name="login-verify"),
    path("login/passkey/options/", second_factor_views.passkey_login_options, name="passkey-login-options"),
    path("login/passkey/", second_factor_views.passkey_login, name="passkey-login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path("password-reset/sent/", views.PasswordResetDoneView.as_view(), name="password-reset-done"),
    path("reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password-reset-confirm"),
    path("reset/done/", views.PasswordResetCompleteView.as_view(), name="password-reset-complete"),
    path("two-factor/", second_factor_views.two_factor, name="two-factor"),
    path("two-factor/passkeys/options/", second_factor_views.passkey_register_options,
         name="passkey-register-options"),
    path("two-factor/passkeys/", second_factor_views.passkey_register, name="passkey-register"),
    path("tokens/", token_views.token_list, name="tokens"),
    path("tokens/<int:token_id>/revoke/", token_views.token_revoke, name="token-revoke"),
]
