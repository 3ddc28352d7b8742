"""users/get_account, get_account_batch and features/get_values through the official SDK."""

from __future__ import annotations

import dropbox
import pytest
from dropbox import users

pytestmark = pytest.mark.conformance

MISSING = "dbid:" + "Z" * 35


def test_get_account_matches_current_account(dbx, account, sdk_for, account_pool) -> None:
    other = account_pool.get()
    me = dbx.users_get_current_account()
    got = sdk_for(other.token).users_get_account(account.account_id)
    assert isinstance(got, users.BasicAccount)
    assert (got.account_id, got.email, got.name.display_name) == (me.account_id, me.email, me.name.display_name)
    assert got.email_verified is True and got.disabled is False and got.is_teammate is False
    assert got.profile_photo_url is None and got.team_member_id is None


def test_get_account_unknown(dbx) -> None:
    with pytest.raises(dropbox.exceptions.ApiError) as e:
        dbx.users_get_account(MISSING)
    assert e.value.error.is_no_account()


def test_get_account_batch(dbx, account, account_pool) -> None:
    other = account_pool.get()
    got = dbx.users_get_account_batch([other.account_id, account.account_id])
    assert [a.account_id for a in got] == [other.account_id, account.account_id]
    assert [a.email for a in got] == [other.email, account.email]


def test_get_account_batch_unknown(dbx, account) -> None:
    with pytest.raises(dropbox.exceptions.ApiError) as e:
        dbx.users_get_account_batch([account.account_id, MISSING])
    assert e.value.error.is_no_account() and e.value.error.get_no_account() == MISSING


def test_features_get_values(dbx) -> None:
    res = dbx.users_features_get_values([users.UserFeature.paper_as_files, users.UserFeature.file_locking])
    paper, locking = res.values
    assert paper.is_paper_as_files() and paper.get_paper_as_files().get_enabled() is False
    assert locking.is_file_locking() and locking.get_file_locking().get_enabled() is False


def test_features_empty_list(dbx) -> None:
    with pytest.raises(dropbox.exceptions.ApiError) as e:
        dbx.users_features_get_values([])
    assert e.value.error.is_empty_features_list()
