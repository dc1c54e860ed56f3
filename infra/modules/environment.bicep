// Azure Container Apps environment (workload profiles, "v2") with the built-in Consumption profile and one serverless
// GPU profile. Serverless GPUs are Consumption profiles: billed per second while a replica runs, able to scale to
// zero. Logs go to Log Analytics through a diagnostic setting ('azure-monitor' destination), so the environment never
// needs the workspace's shared key.

@description('Environment name.')
param name string

@description('Azure region; it must offer the chosen serverless GPU type.')
param location string

@description('Serverless GPU workload profile type.')
@allowed([
  'Consumption-GPU-NC8as-T4'
  'Consumption-GPU-NC24-A100'
])
param gpuProfileType string

@description('Name the GPU workload profile gets inside the environment (the app pins itself to it).')
param gpuProfileName string

@description('Log Analytics workspace receiving the environment logs.')
param workspaceId string

@description('''Subnet resource ID (at least /27, delegated to Microsoft.App/environments) to run the environment in a
virtual network, so the app can reach storage behind its firewall or through private endpoints; empty: no VNet.''')
param infrastructureSubnetId string = ''

@description('Tags for every resource.')
param tags object = {}

resource environment 'Microsoft.App/managedEnvironments@2025-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'azure-monitor'
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
      {
        name: gpuProfileName
        workloadProfileType: gpuProfileType
      }
    ]
    zoneRedundant: false
    vnetConfiguration: empty(infrastructureSubnetId)
      ? null
      : {
          infrastructureSubnetId: infrastructureSubnetId
          internal: false
        }
  }
}

resource logs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: environment
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output environmentId string = environment.id
output gpuProfileName string = gpuProfileName
