"""Security-relevant properties of the storage account, Key Vault, Function App and monitoring resources."""

from __future__ import annotations

from tests.infra.bicep_model import Expression, bicep_file

STORAGE = "app/storage.bicep"
FUNCTION = "app/function.bicep"
KEY_VAULT = "app/keyvault.bicep"


def test_storage_account_is_identity_only_tls12_https_and_private_blobs():
    storage = bicep_file(STORAGE).declaration("storage")
    properties = storage.value("properties")
    assert properties["allowSharedKeyAccess"] is False
    assert properties["defaultToOAuthAuthentication"] is True
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["allowBlobPublicAccess"] is False
    assert properties["supportsHttpsTrafficOnly"] is True
    assert properties["allowCrossTenantReplication"] is False


def test_every_blob_container_is_private():
    containers = bicep_file(STORAGE).resources("Microsoft.Storage/storageAccounts/blobServices/containers")
    # The scanner groups' uploads containers are made (private, no public access) and deleted by the app.
    assert {c.name for c in containers} == {"deploymentContainer", "resultsContainer"}
    assert all(c.value("properties", "publicAccess") == "None" for c in containers)


def test_results_uploads_and_tables_carry_the_names_the_app_reads():
    main = bicep_file("main.bicep")
    variables = main.variables()
    expected = {
        "resultsContainerName": "scan-reports",
        "uploadsContainerName": "scan-uploads",
        "cacheTableName": "imagecache",
        "scansTableName": "scans",
    }
    for name, value in expected.items():
        assert (variables[name].text or b"").decode() == f"'{value}'"
    storage = main.declaration("storage")
    assert storage.text("params", "resultsContainerName") == "resultsContainerName"
    assert storage.text("params", "uploadsContainerName") == "uploadsContainerName"


def test_storage_account_name_is_st_plus_unique_string():
    # Backs the CKV_AZURE_43 skip in infra/.checkov.yaml: checkov cannot resolve the module parameter.
    main = bicep_file("main.bicep")
    assert (
        main.declaration("storage").text("params", "storageAccountName") == "'${abbreviations.storage}${resourceToken}'"
    )
    assert (main.variables()["resourceToken"].text or b"").decode() == (
        "toLower(uniqueString(subscription().id, environmentName, location))"
    )
    assert "storage: 'st'" in (main.variables()["abbreviations"].text or b"").decode()


def test_uploads_inbox_expires():
    """The rule covers every per-group container `<prefix>-<24 hex>`: a bare prefix, no trailing '/'."""
    policy = bicep_file(STORAGE).declaration("lifecycle").value("properties", "policy")
    (rule,) = policy["rules"]
    assert rule["definition"]["filters"]["prefixMatch"] == [Expression("uploadsContainerName")]
    assert "delete" in rule["definition"]["actions"]["baseBlob"]


def test_key_vault_uses_rbac_and_is_recoverable():
    vault = bicep_file(KEY_VAULT).declaration("vault")
    properties = vault.value("properties")
    assert properties["enableRbacAuthorization"] is True
    assert "accessPolicies" not in properties
    assert properties["enableSoftDelete"] is True
    assert properties["enablePurgeProtection"] is True


def test_secrets_expire_and_are_only_created_when_given():
    secret = bicep_file("app/keyvault-secret.bicep").declaration("secret")
    assert secret.value("properties", "attributes", "exp") == Expression("expiresOn")
    assert secret.value("properties", "contentType") == "text/plain"
    parameters = bicep_file("app/keyvault-secret.bicep").parameters()
    assert "secure" in parameters["secretValue"].decorators
    modules = bicep_file(KEY_VAULT).modules()
    assert len(modules) == 8  # Qualys token, client id and secret, SMTP password, webhook URL and secret, Teams, Slack
    assert all(module.conditional for module in modules)


def test_secure_parameters_have_no_default_but_empty():
    for relative in ("main.bicep", KEY_VAULT):
        for parameter in bicep_file(relative).parameters().values():
            if "secure" in parameter.decorators:
                assert parameter.default is None or parameter.default.text == b"''", parameter.name


def test_function_app_is_flex_python311_https_only_with_user_assigned_identity():
    function = bicep_file(FUNCTION)
    plan = function.declaration("plan")
    assert plan.value("sku") == {"tier": "FlexConsumption", "name": "FC1"}
    app = function.declaration("functionApp")
    assert app.value("kind") == "functionapp,linux"
    assert app.value("identity", "type") == "UserAssigned"
    assert app.value("properties", "httpsOnly") is True
    assert app.value("properties", "keyVaultReferenceIdentity") == Expression("appIdentityId")
    site_config = app.value("properties", "siteConfig")
    assert site_config["minTlsVersion"] == "1.2"
    assert site_config["ftpsState"] == "Disabled"
    assert site_config["remoteDebuggingEnabled"] is False
    config = app.value("properties", "functionAppConfig")
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert app.value("tags") == Expression("union(tags, {\n    'azd-service-name': 'api'\n  })")


def test_publishing_passwords_are_off():
    policies = bicep_file(FUNCTION).resources("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {p.value("name") for p in policies} == {"ftp", "scm"}
    assert all(p.value("properties", "allow") is False for p in policies)


def test_telemetry_needs_entra_id():
    monitoring = bicep_file("app/monitoring.bicep")
    assert monitoring.declaration("applicationInsights").value("properties", "DisableLocalAuth") is True
    assert monitoring.declaration("logAnalytics").value("properties", "features", "disableLocalAuth") is True
