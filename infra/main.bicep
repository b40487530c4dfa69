// Entry point for `azd up`: the image-scanner function app, its event routes, secrets and least-privilege identities.
targetScope = 'subscription'

// ---------------------------------------------------------------- environment
@minLength(1)
@maxLength(40)
@description('azd environment name; names the resource groups and seeds the unique resource names.')
param environmentName string

@minLength(1)
@description('Region of the app and its resources (must offer Flex Consumption).')
param location string

@description('Resource group of the app; default rg-<environmentName>.')
param resourceGroupName string = ''

@description('Dedicated resource group for the short-lived scanner container groups; default rg-<environmentName>-scanners.')
param scannerResourceGroupName string = ''

@description('Region of the scanner container groups; default: location.')
param scannerLocation string = ''

// ---------------------------------------------------------------- Qualys
@description('Qualys platform (POD) of the subscription.')
@allowed([
  'US1'
  'US2'
  'US3'
  'US4'
  'EU1'
  'EU2'
  'EU3'
  'IN1'
  'CA1'
  'AE1'
  'UK1'
  'AU1'
  'KSA1'
])
param qualysPod string

@secure()
@description('Qualys access token (or give qualysClientId and qualysClientSecret). Stored in Key Vault.')
param qualysAccessToken string = ''

@secure()
@description('Qualys client id for OAuth client credentials. Stored in Key Vault.')
param qualysClientId string = ''

@secure()
@description('Qualys client secret. Stored in Key Vault.')
param qualysClientSecret string = ''

// ---------------------------------------------------------------- scanner
@description('QScanner release the scanner container downloads (X.Y.Z-N).')
param qscannerVersion string = '4.8.0-2'

@description('Base image of the scanner container.')
param qscannerImage string = 'mcr.microsoft.com/azurelinux/base/core:3.0'

@description('URL of a pinned QScanner archive or binary; empty uses Qualys\' download_qscanner.sh (docs/scanner.md).')
param qscannerDownloadUrl string = ''

@description('SHA-256 of the QScanner download (64 hex digits); required: without it the scanner refuses to download.')
param qscannerSha256 string = ''

@description('QScanner --report-format: subset of json,sarif,table,gitlab holding sarif or json.')
param qscannerReportFormats string = 'sarif,json'

@description('SBOM added to the inventory: spdx, cyclonedx or none.')
param qscannerSbomFormat string = 'spdx'

@description('Least seconds the scanner gives one image (QScanner scan plus report fetch).')
param scanTimeoutPerImageSeconds string = '600'

@description('Scanner groups at once, at most the ACI container group quota of the scanner region (1-100).')
param maxConcurrentScannerGroups string = '20'

@description('Cores the scanner groups may use at once (SCANNER_CPU each); ACI default StandardCores quota is 100.')
param aciMaxCores string = '100'

@description('Scanner group creates per 5 minutes (ACI limit 100; lower it to leave room for other workloads).')
param aciMaxCreatesPer5Minutes string = '100'

@description('Scanner group creates per hour (ACI limit 300; lower it to leave room for other workloads).')
param aciMaxCreatesPerHour string = '300'

@description('Seconds one scanner group may run before the app gives up on it.')
param scanTimeoutSeconds string = '1800'

@description('Hours a scan result of an image is reused before the image is scanned again.')
param scanCacheHours string = '24'

@description('Hours an image may wait in the scan queue for a scanner before it times out.')
param scanQueueMaxHours string = '24'

@description('Hours after which a still-deployed image is scanned again (a low-priority rescan).')
@minValue(1)
@maxValue(720)
param rescanIntervalHours int = 24

@description('Comma-separated registry resource ids: AcrPull for the scanner (private images) and the app (tag digests).')
param scannerAcrResourceIds string = ''

@description('Comma-separated host or host:port names of private registries the app may reach (loopback, private or link-local addresses are refused otherwise).')
param allowedPrivateRegistries string = ''

// ---------------------------------------------------------------- notifications
@description('Comma-separated e-mail recipients of findings; empty disables e-mail.')
param notificationEmail string = ''

@description('Lowest severity that triggers a notification.')
@allowed([
  'CRITICAL'
  'HIGH'
  'MEDIUM'
  'LOW'
])
param notifySeverityThreshold string = 'HIGH'

@description('SMTP server (STARTTLS).')
param smtpHost string = ''

@description('SMTP port.')
param smtpPort string = '587'

@description('SMTP user name.')
param smtpUsername string = ''

@secure()
@description('SMTP password. Stored in Key Vault.')
param smtpPassword string = ''

@description('Sender address of notification e-mails.')
param smtpFrom string = ''

@secure()
@description('Webhook that receives findings (HTTPS). Stored in Key Vault because such URLs often embed a token.')
param notifyWebhookUrl string = ''

@secure()
@description('Shared secret the app signs webhook bodies with. Stored in Key Vault.')
param notifyWebhookSecret string = ''

@secure()
@description('Microsoft Teams Workflows webhook URL (HTTPS). Stored in Key Vault: the URL carries its signature.')
param notifyTeamsUrl string = ''

@secure()
@description('Slack incoming webhook URL (HTTPS). Stored in Key Vault: the URL carries its token.')
param notifySlackUrl string = ''

@description('Alert digest window in minutes (0: one alert per scan); a divisor of 60 or whole hours dividing 24.')
@minValue(0)
@maxValue(1440)
param alertDigestMinutes int = 0

@description('The app\'s public base URL; truncated chat messages link to its API. Empty: no links.')
param publicBaseUrl string = ''

// ---------------------------------------------------------------- event routes
@description('Default route: Event Grid system topic of the subscription -> hub, with managed identity, in seconds.')
param enableEventGridRoute bool = true

@description('Seed route: subscription Activity Log -> hub via a Send-only SAS rule (turns on local auth), 10-15 minutes.')
param enableActivityLogRoute bool = false

@description('Other subscriptions to watch, comma-separated ids: each gets a system topic routed to the hub and the read role.')
param monitoredSubscriptions string = ''

@description('SCAN_EXCLUDE: comma-separated rg:<glob>, resource:<glob> and image:<glob> entries that are never scanned.')
param scanExclude string = ''

@description('Event Hubs tier. Basic halves the cost at rest but allows only $Default and cannot take the Activity Log.')
@allowed([
  'Basic'
  'Standard'
])
param eventHubSku string = 'Standard'

@description('Subscribe the app to its scanners\' status uploads (Event Grid). Needs the app code deployed first: set true after the first `azd deploy` (docs/deploy.md).')
param enableUploadEvents bool = false

// ---------------------------------------------------------------- names
var abbreviations = {
  appIdentity: 'id-app-'
  scannerIdentity: 'id-scanner-'
  storage: 'st'
  functionApp: 'func-'
  plan: 'plan-'
  keyVault: 'kv-'
  eventHubNamespace: 'evhns-'
  systemTopic: 'evgst-'
  storageTopic: 'evgst-st-'
  logAnalytics: 'log-'
  applicationInsights: 'appi-'
}
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'aci-image-scanner'
}
var appResourceGroupName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
var scannerGroupName = empty(scannerResourceGroupName) ? 'rg-${environmentName}-scanners' : scannerResourceGroupName
var scannerRegion = empty(scannerLocation) ? location : scannerLocation
var functionAppName = '${abbreviations.functionApp}${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}'
var eventHubName = 'deployments'
var eventHubConnectionName = 'EventHubConnection'
var resultsContainerName = 'scan-reports'
var uploadsContainerName = 'scan-uploads'
var cacheTableName = 'imagecache'
var scansTableName = 'scans'
var inventoryTableName = 'inventory'
var durableTaskHubName = 'qscanner'
// The app's own subscription is always watched (eventgrid.bicep); the others each get monitored-subscription.bicep.
var ownSubscriptionId = toLower(subscription().subscriptionId)
var extraSubscriptionIds = split(toLower(replace(monitoredSubscriptions, ' ', '')), ',')
var monitoredSubscriptionIds = empty(monitoredSubscriptions) ? [ownSubscriptionId] : union([ownSubscriptionId], extraSubscriptionIds)
var acrResourceIds = empty(scannerAcrResourceIds) ? [] : split(replace(scannerAcrResourceIds, ' ', ''), ',')

// ---------------------------------------------------------------- resource groups
resource appResourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: appResourceGroupName
  location: location
  tags: tags
}

// Holds nothing but the scanner groups the app creates and deletes; the app may act on container groups only here.
resource scannerResourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: scannerGroupName
  location: scannerRegion
  tags: union(tags, {
    purpose: 'short-lived image scanner container groups'
  })
}

// ---------------------------------------------------------------- resources
module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    logAnalyticsName: '${abbreviations.logAnalytics}${resourceToken}'
    applicationInsightsName: '${abbreviations.applicationInsights}${resourceToken}'
  }
}

module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module identities 'app/identities.bicep' = {
  name: 'identities'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    appIdentityName: '${abbreviations.appIdentity}${resourceToken}'
    scannerIdentityName: '${abbreviations.scannerIdentity}${resourceToken}'
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    storageAccountName: '${abbreviations.storage}${resourceToken}'
    deploymentContainerName: deploymentContainerName
    resultsContainerName: resultsContainerName
    uploadsContainerName: uploadsContainerName
    tableNames: [
      cacheTableName
      scansTableName
      inventoryTableName
    ]
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    keyVaultName: '${abbreviations.keyVault}${resourceToken}'
    qualysAccessToken: qualysAccessToken
    qualysClientId: qualysClientId
    qualysClientSecret: qualysClientSecret
    smtpPassword: smtpPassword
    notifyWebhookUrl: notifyWebhookUrl
    notifyWebhookSecret: notifyWebhookSecret
    notifyTeamsUrl: notifyTeamsUrl
    notifySlackUrl: notifySlackUrl
  }
}

module eventHub 'app/eventhub.bicep' = {
  name: 'eventhub'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    namespaceName: '${abbreviations.eventHubNamespace}${resourceToken}'
    eventHubName: eventHubName
    sku: enableActivityLogRoute ? 'Standard' : eventHubSku
    enableActivityLogRule: enableActivityLogRoute
  }
}

module eventGrid 'app/eventgrid.bicep' = if (enableEventGridRoute) {
  name: 'eventgrid'
  scope: appResourceGroup
  params: {
    tags: tags
    systemTopicName: '${abbreviations.systemTopic}${resourceToken}'
    eventHubNamespaceName: eventHub.outputs.namespaceName
    eventHubName: eventHub.outputs.eventHubName
    scannerResourceGroupId: scannerResourceGroup.id
  }
}

module activityLog 'app/activitylog.bicep' = if (enableActivityLogRoute) {
  name: 'activitylog'
  params: {
    settingName: 'image-scanner-${environmentName}'
    eventHubAuthorizationRuleId: eventHub.outputs.activityLogRuleId
    eventHubName: eventHub.outputs.eventHubName
  }
}

module monitoredSubscriptionRoutes 'app/monitored-subscription.bicep' = [
  for (monitoredSubscriptionId, index) in monitoredSubscriptionIds: if (!empty(monitoredSubscriptionId) && monitoredSubscriptionId != ownSubscriptionId) {
    name: 'monitored-subscription-${index}'
    scope: subscription(monitoredSubscriptionId)
    params: {
      environmentName: environmentName
      location: location
      tags: tags
      eventsResourceGroupName: 'rg-${environmentName}-events'
      systemTopicName: '${abbreviations.systemTopic}${toLower(uniqueString(monitoredSubscriptionId, environmentName))}'
      eventHubNamespaceName: eventHub.outputs.namespaceName
      eventHubName: eventHub.outputs.eventHubName
      eventHubSubscriptionId: subscription().subscriptionId
      eventHubResourceGroupName: appResourceGroup.name
      appPrincipalId: identities.outputs.appIdentityPrincipalId
    }
  }
]

// ---------------------------------------------------------------- roles
module customRoles 'app/custom-roles.bicep' = {
  name: 'custom-roles'
  params: {
    environmentName: environmentName
    scannerResourceGroupId: scannerResourceGroup.id
    appResourceGroupId: appResourceGroup.id
  }
}

module appRoles 'app/roles-app.bicep' = {
  name: 'roles-app'
  scope: appResourceGroup
  params: {
    appPrincipalId: identities.outputs.appIdentityPrincipalId
    storageAccountName: storage.outputs.storageAccountName
    eventHubNamespaceName: eventHub.outputs.namespaceName
    eventHubName: eventHub.outputs.eventHubName
    keyVaultName: keyVault.outputs.keyVaultName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    scannerIdentityName: identities.outputs.scannerIdentityName
    identityAssignerRoleId: customRoles.outputs.identityAssignerRoleId
  }
}

module scannerRoles 'app/roles-scanner-rg.bicep' = {
  name: 'roles-scanner-rg'
  scope: scannerResourceGroup
  params: {
    appPrincipalId: identities.outputs.appIdentityPrincipalId
    scannerOperatorRoleId: customRoles.outputs.scannerOperatorRoleId
  }
}

module subscriptionRoles 'app/roles-subscription.bicep' = {
  name: 'roles-subscription'
  params: {
    appPrincipalId: identities.outputs.appIdentityPrincipalId
    deploymentReaderRoleId: customRoles.outputs.deploymentReaderRoleId
  }
}

module acrPull 'app/roles-acr.bicep' = [
  for (registryId, index) in acrResourceIds: {
    name: 'roles-acr-${index}'
    scope: resourceGroup(split(registryId, '/')[2], split(registryId, '/')[4])
    params: {
      registryName: last(split(registryId, '/'))
      scannerPrincipalId: identities.outputs.scannerIdentityPrincipalId
      appPrincipalId: identities.outputs.appIdentityPrincipalId
    }
  }
]

// ---------------------------------------------------------------- function app
var appIdentityClientId = identities.outputs.appIdentityClientId
var plainSettings = {
  // Host storage and Durable Functions, identity-based.
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: appIdentityClientId
  DURABLE_TASK_HUB: durableTaskHubName
  AZURE_CLIENT_ID: appIdentityClientId
  // Telemetry with Entra ID (Monitoring Metrics Publisher on the component).
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${appIdentityClientId};Authorization=AAD'
  // Event Hubs trigger, identity-based; the trigger's connection is EVENTHUB_CONNECTION = EventHubConnection.
  EVENTHUB_CONNECTION: eventHubConnectionName
  EventHubConnection__fullyQualifiedNamespace: eventHub.outputs.fullyQualifiedNamespace
  EventHubConnection__credential: 'managedidentity'
  EventHubConnection__clientId: appIdentityClientId
  EVENTHUB_NAME: eventHub.outputs.eventHubName
  EVENTHUB_CONSUMER_GROUP: eventHub.outputs.consumerGroupName
  // Results.
  RESULTS_CONTAINER: resultsContainerName
  UPLOADS_CONTAINER: uploadsContainerName
  CACHE_TABLE: cacheTableName
  SCANS_TABLE: scansTableName
  // Inventory and Resource Graph sweeps (the app's identity reads the monitored subscriptions: roles-subscription).
  INVENTORY_TABLE: inventoryTableName
  SWEEP_SCHEDULE: '0 30 */6 * * *'
  // Rescans of deployed images whose latest result is older than the interval (docs/operations.md "Rescans").
  RESCAN_INTERVAL_HOURS: string(rescanIntervalHours)
  RESCAN_SCHEDULE: '0 45 * * * *'
  // Scanner placement and identity.
  AZURE_SUBSCRIPTION_ID: subscription().subscriptionId
  MONITORED_SUBSCRIPTIONS: join(monitoredSubscriptionIds, ',')
  SCAN_EXCLUDE: scanExclude
  SCANNER_RESOURCE_GROUP: scannerResourceGroup.name
  SCANNER_LOCATION: scannerRegion
  SCANNER_IDENTITY_RESOURCE_ID: identities.outputs.scannerIdentityId
  SCANNER_IDENTITY_CLIENT_ID: identities.outputs.scannerIdentityClientId
  QSCANNER_VERSION: qscannerVersion
  QSCANNER_IMAGE: qscannerImage
  QSCANNER_DOWNLOAD_URL: qscannerDownloadUrl
  QSCANNER_SHA256: qscannerSha256
  QSCANNER_REPORT_FORMATS: qscannerReportFormats
  QSCANNER_SBOM_FORMAT: qscannerSbomFormat
  SCAN_TIMEOUT_PER_IMAGE: scanTimeoutPerImageSeconds
  MAX_CONCURRENT_SCANNER_GROUPS: maxConcurrentScannerGroups
  ACI_MAX_CORES: aciMaxCores
  ACI_MAX_CREATES_PER_5_MINUTES: aciMaxCreatesPer5Minutes
  ACI_MAX_CREATES_PER_HOUR: aciMaxCreatesPerHour
  SCAN_TIMEOUT: scanTimeoutSeconds
  SCAN_CACHE_HOURS: scanCacheHours
  SCAN_QUEUE_MAX_HOURS: scanQueueMaxHours
  ALLOWED_PRIVATE_REGISTRIES: allowedPrivateRegistries
  QUALYS_POD: qualysPod
  // Notifications (empty means off).
  NOTIFICATION_EMAIL: notificationEmail
  NOTIFY_SEVERITY_THRESHOLD: notifySeverityThreshold
  SMTP_HOST: smtpHost
  SMTP_PORT: smtpPort
  SMTP_USERNAME: smtpUsername
  SMTP_FROM: smtpFrom
  ALERT_DIGEST_MINUTES: string(alertDigestMinutes)
  PUBLIC_BASE_URL: publicBaseUrl
}
// Adds QUALYS_ACCESS_TOKEN, QUALYS_CLIENT_ID, QUALYS_CLIENT_SECRET, SMTP_PASSWORD, NOTIFY_WEBHOOK_URL,
// NOTIFY_WEBHOOK_SECRET, NOTIFY_TEAMS_URL and NOTIFY_SLACK_URL as Key Vault references (empty when not given).
var appSettings = union(plainSettings, keyVault.outputs.secretReferences)

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    planName: '${abbreviations.plan}${resourceToken}'
    functionAppName: functionAppName
    appIdentityId: identities.outputs.appIdentityId
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appSettings: appSettings
  }
  dependsOn: [
    appRoles
  ]
}

// Scanner status uploads reach the app as events (completion by event; polls stay the backstop).
module uploadEvents 'app/upload-events.bicep' = if (enableUploadEvents) {
  name: 'upload-events'
  scope: appResourceGroup
  params: {
    tags: tags
    location: location
    systemTopicName: '${abbreviations.storageTopic}${resourceToken}'
    storageAccountName: storage.outputs.storageAccountName
    functionAppName: functionApp.outputs.functionAppName
    uploadsContainerName: uploadsContainerName
  }
}

// ---------------------------------------------------------------- outputs (read by azd)
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = appResourceGroup.name
output SCANNER_RESOURCE_GROUP string = scannerResourceGroup.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.functionAppName
output SERVICE_API_NAME string = functionApp.outputs.functionAppName
output SERVICE_API_URI string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.keyVaultName
output EVENTHUB_NAMESPACE string = eventHub.outputs.namespaceName
output AZURE_WORKBOOK_ID string = workbook.outputs.workbookId
output SCANNER_IDENTITY_CLIENT_ID string = identities.outputs.scannerIdentityClientId
