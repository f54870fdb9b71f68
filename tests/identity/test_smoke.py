from tests.conftest import bearer


def test_sign_up_verify_sign_in_and_me(auth, client):
    account, tokens = auth.verified_account("grace@example.com")
    assert tokens["token_type"] == "Bearer"
    me = client.get("/v1/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert me.json["email"] == "grace@example.com"
    assert me.json["email_verified"] is True
    assert me.json["id"] == account["id"]
