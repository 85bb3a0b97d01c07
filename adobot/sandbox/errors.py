"""The service's error answers, one named function each, with the bodies, typeKeys and TF/VS
codes of Microsoft's specs and captured examples (the ado-rest folder of the shared docs)."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

JSON = "application/json; charset=utf-8"
WEBAPI = "Microsoft.VisualStudio.Services.WebApi"
PIPELINES = "Microsoft.Azure.Pipelines.WebApi"
WIT = "Microsoft.TeamFoundation.WorkItemTracking.Server"
GIT = "Microsoft.TeamFoundation.Git.Server"
FRAMEWORK = "Microsoft.TeamFoundation.Framework.Server"


class ApiError(Exception):
    """An error answer: status, body and extra headers."""

    def __init__(self, status: int, payload: Any, headers: dict[str, str] | None = None,
                 content_type: str = JSON) -> None:
        super().__init__(status)
        self.status, self.payload, self.headers = status, payload, headers or {}
        self.content_type = content_type


def body(message: str, type_key: str, type_name: str) -> dict[str, Any]:
    """The service's error document."""
    return {"$id": "1", "innerException": None, "message": message, "typeName": type_name,
            "typeKey": type_key, "errorCode": 0, "eventId": 3000}


def _in(namespace: str, type_key: str, assembly: str | None = None) -> str:
    """A .NET type name: ``Namespace.Type, Assembly`` (the assembly defaults to the namespace)."""
    return f"{namespace}.{type_key}, {assembly or namespace}"


def refuse(status: int, message: str, type_key: str, namespace: str,
           assembly: str | None = None) -> ApiError:
    return ApiError(status, body(message, type_key, _in(namespace, type_key, assembly)))


def challenge_headers(message: str) -> dict[str, str]:
    return {
        "WWW-Authenticate": 'Bearer authorization_uri=https://login.microsoftonline.com/common, '
                            'Basic realm="https://dev.azure.com/"',
        "X-TFS-ServiceError": quote(message),
    }


# --- routing and protocol ------------------------------------------------------------------------

def resource_not_found(path: str) -> ApiError:
    return ApiError(404, body(f"VS800089: The resource at '{path}' cannot be found.",
                              "VssResourceNotFoundException",
                              f"{WEBAPI}.VssResourceNotFoundException"))


def method_not_allowed(method: str) -> ApiError:
    return ApiError(405, body(f"The requested resource does not support http method "
                              f"'{method}'.", "HttpMethodNotAllowed", ""))


def organization_not_found(name: str) -> ApiError:
    return ApiError(404, body(f"The organization '{name}' could not be found.",
                              "HostNotFoundException",
                              "Microsoft.VisualStudio.Services.Host.HostNotFoundException"))


def invalid_json() -> ApiError:
    return ApiError(400, body("VS403403: The request body is not valid JSON.",
                              "InvalidRequestContentException",
                              "Microsoft.VisualStudio.Services.WebApi.InvalidRequestContentException"))


def not_an_object() -> ApiError:
    return refuse(400, "VS403403: The request body must be a JSON object.",
                  "InvalidRequestContentException", WEBAPI)


def argument_null(parameter: str) -> ApiError:
    return refuse(400, f"Value cannot be null.\r\nParameter name: {parameter}",
                  "ArgumentNullException", "System")


def invalid_argument(message: str) -> ApiError:
    return refuse(400, message, "InvalidArgumentValueException", WEBAPI)


def content_type_not_supported(content_type: str, method: str, valid: str) -> ApiError:
    return refuse(400, f'The request indicated a Content-Type of "{content_type}" for method '
                  f'type "{method}" which is not supported. Valid content types for this method '
                  f"are: {valid}.", "VssRequestContentTypeNotSupportedException", WEBAPI)


# --- api-version -------------------------------------------------------------------------------

def version_not_specified(method: str) -> ApiError:
    return ApiError(400, body(
        f'No api-version was supplied for the "{method}" request. The version '
        'must be supplied either as part of the Accept header (e.g. "application/json; '
        'api-version=1.0") or as a query parameter (e.g. "?api-version=1.0").',
        "VssVersionNotSpecifiedException", f"{WEBAPI}.VssVersionNotSpecifiedException"))


def invalid_api_version(raw: str) -> ApiError:
    return ApiError(400, body(f"The api-version '{raw}' is not valid.",
                              "VssInvalidApiVersionException",
                              f"{WEBAPI}.VssInvalidApiVersionException"))


def version_out_of_range(raw: str, latest: tuple[int, int]) -> ApiError:
    return ApiError(400, body(
        f"The requested REST API version of {raw} is out of range for this server. The "
        f"latest REST API version this server supports is {latest[0]}.{latest[1]}.",
        "VssVersionOutOfRangeException", f"{WEBAPI}.VssVersionOutOfRangeException"))


def preview_flag_required(raw: str) -> ApiError:
    return ApiError(400, body(
        f'The requested version "{raw}" of the resource is under preview. The -preview flag '
        f'must be supplied in the api-version for such requests. For example: "{raw}-preview"',
        "VssInvalidPreviewVersionException", f"{WEBAPI}.VssInvalidPreviewVersionException"))


# --- authentication ----------------------------------------------------------------------------

def _unauthorized(message: str, type_key: str, type_name: str) -> ApiError:
    return ApiError(401, body(message, type_key, type_name), challenge_headers(message))


def anonymous() -> ApiError:
    """A token the service does not know: a bare 401, the message only in X-TFS-ServiceError
    (a PAT that was wrong: Content-Length 0, as reported in microsoft/azure-pipelines-agent#996)."""
    message = ("TF400813: Resource not available for anonymous access. Client authentication "
               "required.")
    return ApiError(401, b"", challenge_headers(message))


def token_expired() -> ApiError:
    return _unauthorized(
        "Access Denied: The Personal Access Token used has expired.", "AccessCheckException",
        _in("Microsoft.VisualStudio.Services.Security", "AccessCheckException", WEBAPI))


def not_authorized(user_id: str) -> ApiError:
    return _unauthorized(
        f"TF400813: The user '{user_id}' is not authorized to access this resource.",
        "UnauthorizedRequestException", _in(FRAMEWORK, "UnauthorizedRequestException"))


def sign_in_redirect(location: str) -> ApiError:
    return ApiError(302, b"", {"Location": location}, content_type="text/html; charset=utf-8")


# --- core and git ------------------------------------------------------------------------------

def project_not_found(id_or_name: str) -> ApiError:
    return refuse(404, f"TF200016: The following project does not exist: {id_or_name}. Verify "
                  "that the name of the project is correct and that the project exists on the "
                  "specified Azure DevOps Server.", "ProjectDoesNotExistWithNameException",
                  "Microsoft.TeamFoundation.Core.WebApi")


def repository_not_found(key: str) -> ApiError:
    return refuse(404, f"TF401019: The Git repository with name or identifier {key} does not "
                  "exist or you do not have permissions for the operation you are attempting.",
                  "GitRepositoryNotFoundException", GIT,
                  "Microsoft.TeamFoundation.SourceControl.WebServer")


def repository_exists(name: str) -> ApiError:
    return refuse(409, f"TF400948: A Git repository with the name {name} already exists.",
                  "GitRepositoryNameAlreadyExistsException", GIT,
                  "Microsoft.TeamFoundation.SourceControl.WebServer")


# --- pipelines ---------------------------------------------------------------------------------

def unsupported_configuration(kind: str) -> ApiError:
    return refuse(400, f"This API does not support creating pipelines of configuration type "
                  f"{kind}.", "UnsupportedConfigurationTypeException", PIPELINES)


def pipeline_exists(name: str, project: str) -> ApiError:
    return refuse(409, f"Build pipeline {name} already exists for project {project}",
                  "DefinitionExistsException", "Microsoft.TeamFoundation.Build.WebApi",
                  "Microsoft.TeamFoundation.Build2.WebApi")


def pipeline_not_found(raw_id: str) -> ApiError:
    return refuse(404, f"Pipeline with id {raw_id} not found.", "PipelineNotFoundException",
                  PIPELINES)


def run_not_found(raw_id: str) -> ApiError:
    return refuse(404, f"Run with id {raw_id} not found.", "PipelineRunNotFoundException",
                  PIPELINES)


def pipeline_validation(message: str) -> ApiError:
    return refuse(400, message, "PipelineValidationException", PIPELINES)


# --- work items --------------------------------------------------------------------------------

def work_item_type_not_found(name: str) -> ApiError:
    return refuse(404, f"VS402323: Work item type {name} does not exist.",
                  "WorkItemTypeNotFoundException", f"{WIT}.Metadata")


def invalid_patch_document() -> ApiError:
    return refuse(400, "You must pass a valid patch document in the body of the request.",
                  "VssPropertyValidationException", "Microsoft.VisualStudio.Services.Common")


def invalid_relation() -> ApiError:
    return refuse(400, "A relation needs 'rel' and 'url'.", "VssPropertyValidationException",
                  "Microsoft.VisualStudio.Services.Common")


def field_not_found(name: str) -> ApiError:
    return refuse(400, f"TF51535: Cannot find field {name}.", "WorkItemFieldInvalidException",
                  WIT)


def rule_error(field: str, codes: str) -> ApiError:
    return refuse(400, f"TF401320: Rule Error for field {field}. Error code: {codes}.",
                  "RuleValidationException", WIT)


def tree_node_not_found(field: str) -> ApiError:
    return refuse(400, f"TF401347: Invalid tree name given for work item -1, field "
                  f"'{field}'.", "WorkItemTrackingTreeNodeNotFoundException", WIT)


def link_target_not_found(target: str) -> ApiError:
    return refuse(400, f"TF201036: You cannot add a link to work item {target}. The work item "
                  "does not exist or you do not have permission to access it.",
                  "WorkItemLinkTargetNotFoundException", WIT)


def work_item_not_found(raw_id: str) -> ApiError:
    return refuse(404, f"TF401232: Work item {raw_id} does not exist, or you do not have "
                  "permissions to read it.", "WorkItemUnauthorizedAccessException", WIT)


# --- injected faults ---------------------------------------------------------------------------

def throttled() -> dict[str, Any]:
    return body("TF400733: The request has been canceled: Request was blocked due to exceeding "
                "usage of resource 'Core' in namespace 'User'.", "RequestBlockedException",
                _in(FRAMEWORK, "RequestBlockedException"))


def unavailable(fault_id: int) -> dict[str, Any]:
    return body(f"The service is temporarily unavailable (sandbox fault {fault_id}).",
                "ServiceUnavailableException",
                _in("Microsoft.VisualStudio.Services.Common", "ServiceUnavailableException"))


# --- git content (wording of the argument errors is not captured: status and typeKey are) ----

def reference_stale(ref: str) -> ApiError:
    return refuse(409, f"TF401028: The reference '{ref}' has already been updated by another "
                  "client, so you cannot update it. Please try again.",
                  "GitReferenceStaleException", GIT)


def push_argument(message: str) -> ApiError:
    """The push API refuses a malformed change (an add on an existing path, an edit or delete of
    a missing one, two changes to one path) as an ArgumentException: 400."""
    return ApiError(400, body(message, "ArgumentException", "System.ArgumentException, mscorlib"))


def item_not_found(path: str, repository: str, version: str) -> ApiError:
    return refuse(404, f"TF401174: The item '{path}' could not be found in the repository "
                  f"'{repository}' at the version specified by '{version}'.",
                  "GitItemNotFoundException", GIT)


def version_unresolvable(version: str) -> ApiError:
    return refuse(404, f"TF401175: The version descriptor <{version}> could not be resolved to a "
                  "version commit.", "GitUnresolvableToCommitException", GIT)


# --- pull requests (TF401179 and TF401398 as reported by clients that handle them) -----------

def pull_request_exists() -> ApiError:
    return refuse(409, "TF401179: An active pull request for the source and target branch "
                  "already exists.", "GitPullRequestExistsException", GIT)


def pull_request_stale() -> ApiError:
    return refuse(400, "TF401398: The pull request cannot be activated because the source "
                  "and/or the target branch no longer exists, or the requested refs are not "
                  "branches.", "GitPullRequestStaleException", GIT)


def pull_request_same_branches() -> ApiError:
    return refuse(400, "TF401396: The source and target branches of a pull request must be "
                  "different.", "InvalidArgumentValueException", WEBAPI)


def pull_request_not_found(raw_id: str) -> ApiError:
    return refuse(404, f"TF401180: The requested pull request was not found: {raw_id}.",
                  "GitPullRequestNotFoundException", GIT)


# --- wikis (wording not captured: the status and typeKey are what clients read) --------------

def wiki_not_found(key: str) -> ApiError:
    return refuse(404, f"VS402485: The wiki '{key}' does not exist or you do not have "
                  "permission to read it.", "WikiNotFoundException",
                  "Microsoft.TeamFoundation.Wiki.Server")


def wiki_page_not_found(path: str) -> ApiError:
    return refuse(404, f"VS402484: The page '{path}' specified does not exist in the wiki.",
                  "WikiPageNotFoundException", "Microsoft.TeamFoundation.Wiki.Server")


# --- search ----------------------------------------------------------------------------------

def search_not_installed(path: str) -> ApiError:
    """Without the Code Search extension the search routes do not exist (reported, not
    captured: a client must expect a 404 on the search route)."""
    return resource_not_found(path)


def search_argument(message: str) -> ApiError:
    return refuse(400, message, "InvalidQueryException",
                  "Microsoft.VisualStudio.Services.Search.WebApi")


# --- WIQL ------------------------------------------------------------------------------------

def wiql_syntax(message: str) -> ApiError:
    return refuse(400, f"TF51006: The query statement is not valid. {message}",
                  "WorkItemTrackingQueryInvalidSyntaxException", WIT)


def wiql_field_not_found(name: str) -> ApiError:
    return refuse(400, f"TF51005: The query references a field that does not exist. The error "
                  f"is caused by \u00ab{name}\u00bb.", "WorkItemTrackingQueryFieldNotFoundException",
                  WIT)


def wiql_too_many(limit: int) -> ApiError:
    return refuse(400, f"VS402337: The number of work items returned exceeds the size limit of "
                  f"{limit}. Change the query to return fewer work items.",
                  "WorkItemTrackingQueryResultSizeLimitExceededException", WIT)


def batch_too_large(limit: int) -> ApiError:
    return refuse(400, f"VS402335: The maximum number of work items that can be read in one "
                  f"request is {limit}.", "WorkItemTrackingQueryResultSizeLimitExceededException",
                  WIT)


def revision_mismatch() -> ApiError:
    """A JSON Patch ``test`` of ``/rev`` that fails: 412 TF26071 (as clients report it)."""
    return refuse(412, "TF26071: This work item has been changed by someone else since you "
                  "opened it. You will need to refresh it and discard your changes.",
                  "WorkItemRevisionMismatchException", WIT)


def artifact_link_invalid(url: str) -> ApiError:
    return refuse(400, f"TF237124: The artifact link '{url}' is not valid: what it names does "
                  "not exist.", "WorkItemLinkInvalidException", WIT)
