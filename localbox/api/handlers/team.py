"""team/* routes (team tokens): team info, members, namespaces, features, the token's admin."""

from __future__ import annotations

from typing import Any

from localbox.api.context import Call, Services
from localbox.api.convert import timestamp
from localbox.domain.errors import CallError
from localbox.domain.teams import NamespaceKind, TeamNamespace
from localbox.services.access import display_name
from localbox.services.teams import MemberView, TeamPrincipal
from localbox.spec import team, team_policies, users

_NAMESPACE_TYPES = {
    NamespaceKind.ROOT: team.NamespaceType.team_member_root,
    NamespaceKind.HOME: team.NamespaceType.team_member_folder,
    NamespaceKind.FOLDER: team.NamespaceType.team_folder,
}


def _principal(call: Call) -> TeamPrincipal:
    if call.team is None:
        raise RuntimeError(f"{call.route.path} is a team route: it needs a team principal")
    return call.team


def _name(view: MemberView) -> Any:
    acct = view.account
    display = display_name(acct)
    abbreviated = "".join(p[0].upper() for p in display.split()[:2]) or acct.email[:1].upper()
    return users.Name(given_name=acct.given_name, surname=acct.surname, familiar_name=acct.given_name,
                      display_name=display, abbreviated_name=abbreviated)


def _status(view: MemberView) -> Any:
    if view.member.active and view.member.suspended is not None:
        return team.TeamMemberStatus.suspended
    if view.member.active:
        return team.TeamMemberStatus.active
    return team.TeamMemberStatus.removed(team.RemovedStatus(is_recoverable=False, is_disconnected=False))


def member_profile(view: MemberView) -> Any:
    m = view.member
    return team.TeamMemberProfile(
        team_member_id=m.team_member_id, account_id=m.account_id, email=view.account.email, email_verified=True,
        status=_status(view), name=_name(view), membership_type=team.TeamMembershipType.full, groups=[],
        member_folder_id=view.account.root_namespace_id, root_folder_id=view.team.root_namespace_id,
        joined_on=timestamp(m.joined),
    )


_ADMIN_ROLE = ("pid_dbtmr:team_admin", "Team", "Full access to the team and its members")


def _member_info(view: MemberView) -> Any:
    roles = [team.TeamMemberRole(*_ADMIN_ROLE)] if view.member.is_admin else []
    return team.TeamMemberInfoV2(profile=member_profile(view), roles=roles)


def policies() -> Any:
    # localbox enforces no sharing policy: report Dropbox's defaults for a new team.
    p = team_policies
    sharing = p.TeamSharingPolicies(
        shared_folder_member_policy=p.SharedFolderMemberPolicy.anyone,
        shared_folder_join_policy=p.SharedFolderJoinPolicy.from_anyone,
        shared_link_create_policy=p.SharedLinkCreatePolicy.default_public,
        group_creation_policy=p.GroupCreation.admins_only,
        shared_folder_link_restriction_policy=p.SharedFolderBlanketLinkRestrictionPolicy.anyone,
        enforce_link_password_policy=p.EnforceLinkPasswordPolicy.optional,
        default_link_expiration_days_policy=p.DefaultLinkExpirationDaysPolicy.none,
        shared_link_default_permissions_policy=p.SharedLinkDefaultPermissionsPolicy.default,
    )
    return p.TeamMemberPolicies(
        sharing=sharing, emm_state=p.EmmState.disabled, office_addin=p.OfficeAddInPolicy.disabled,
        suggest_members_policy=p.SuggestMembersPolicy.enabled,
        top_level_content_policy=p.TopLevelContentPolicy.everyone,
    )


async def get_info(svc: Services, call: Call) -> Any:
    tm, members = await svc.teams.team_info(_principal(call).team.team_id)
    return team.TeamGetInfoResult(name=tm.name, team_id=tm.team_id, num_licensed_users=members,
                                  num_provisioned_users=members, num_used_licenses=members, policies=policies())


async def members_list(svc: Services, call: Call) -> Any:
    page = await svc.teams.list_members(_principal(call).team.team_id, call.arg.limit, call.arg.include_removed)
    return team.MembersListV2Result(members=[_member_info(v) for v in page.items], cursor=page.cursor,
                                    has_more=page.has_more)


async def members_list_continue(svc: Services, call: Call) -> Any:
    page = await svc.teams.list_members(_principal(call).team.team_id, 0, False, cursor=call.arg.cursor)
    return team.MembersListV2Result(members=[_member_info(v) for v in page.items], cursor=page.cursor,
                                    has_more=page.has_more)


async def members_get_info(svc: Services, call: Call) -> Any:
    selectors = [(s._tag, s.get_team_member_id() if s.is_team_member_id() else
                  s.get_email() if s.is_email() else s.get_external_id()) for s in call.arg.members]
    found = await svc.teams.find_members(_principal(call).team.team_id, selectors)
    items = [team.MembersGetInfoItemV2.member_info(_member_info(v)) if v is not None
             else team.MembersGetInfoItemV2.id_not_found(value) for v, (_, value) in zip(found, selectors, strict=True)]
    return team.MembersGetInfoV2Result(members_info=items)


def _namespace(n: TeamNamespace) -> Any:
    return team.NamespaceMetadata(name=n.name, namespace_id=n.namespace_id, namespace_type=_NAMESPACE_TYPES[n.kind],
                                  team_member_id=n.team_member_id)


async def namespaces_list(svc: Services, call: Call) -> Any:
    page = await svc.teams.list_namespaces(_principal(call).team.team_id, call.arg.limit)
    return team.TeamNamespacesListResult(namespaces=[_namespace(n) for n in page.items], cursor=page.cursor,
                                         has_more=page.has_more)


async def namespaces_list_continue(svc: Services, call: Call) -> Any:
    page = await svc.teams.list_namespaces(_principal(call).team.team_id, 0, cursor=call.arg.cursor)
    return team.TeamNamespacesListResult(namespaces=[_namespace(n) for n in page.items], cursor=page.cursor,
                                         has_more=page.has_more)


async def features_get_values(svc: Services, call: Call) -> Any:
    features = call.arg.features
    if not features:
        raise CallError("empty_features_list")
    fresh, _ = await svc.teams.team_info(_principal(call).team.team_id)  # `team set-limit` may run any time
    limit = fresh.transport_limit
    values: list[Any] = []
    for f in features:
        if f.is_upload_api_rate_limit():
            value = (team.UploadApiRateLimitValue.unlimited if limit is None
                     else team.UploadApiRateLimitValue.limit(limit))
            values.append(team.FeatureValue.upload_api_rate_limit(value))
        elif f.is_has_team_shared_dropbox():
            values.append(team.FeatureValue.has_team_shared_dropbox(
                team.HasTeamSharedDropboxValue.has_team_shared_dropbox(True)))
        elif f.is_has_team_file_events():
            values.append(team.FeatureValue.has_team_file_events(team.HasTeamFileEventsValue.enabled(False)))
        elif f.is_has_team_selective_sync():
            values.append(team.FeatureValue.has_team_selective_sync(
                team.HasTeamSelectiveSyncValue.has_team_selective_sync(False)))
        elif f.is_has_distinct_member_homes():
            values.append(team.FeatureValue.has_distinct_member_homes(
                team.HasDistinctMemberHomesValue.has_distinct_member_homes(True)))
        else:
            raise CallError("empty_features_list")  # pragma: no cover - the decoder rejects unknown tags
    return team.FeaturesGetValuesBatchResult(values=values)


async def get_authenticated_admin(svc: Services, call: Call) -> Any:
    view = await svc.teams.authenticated_admin(_principal(call))
    return team.TokenGetAuthenticatedAdminResult(admin_profile=member_profile(view))


HANDLERS = {
    "team/get_info": get_info,
    "team/members/list_v2": members_list,
    "team/members/list/continue_v2": members_list_continue,
    "team/members/get_info_v2": members_get_info,
    "team/namespaces/list": namespaces_list,
    "team/namespaces/list/continue": namespaces_list_continue,
    "team/features/get_values": features_get_values,
    "team/token/get_authenticated_admin": get_authenticated_admin,
}
