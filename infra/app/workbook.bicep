// Azure Monitor Workbook over the app's OpenTelemetry metrics (Application Insights customMetrics, meter qscan):
// scans, queue, scanner groups and cores, quota waits, alerts, findings by severity (docs/metrics.md).
// The workbook's content is workbook.json next to this file; its default resource is the app's Application Insights.
param location string
param tags object
param applicationInsightsName string

@description('Name of the workbook in the portal (Monitor > Workbooks, and the Application Insights resource).')
param displayName string = 'Image scanner metrics'

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID: stable per resource group and Application Insights resource.
  name: guid(resourceGroup().id, applicationInsights.id, 'qscan-metrics-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsights.id
    version: 'Notebook/1.0'
    serializedData: replace(loadTextContent('workbook.json'), '__APPLICATION_INSIGHTS_ID__', applicationInsights.id)
  }
}

output workbookId string = workbook.id
