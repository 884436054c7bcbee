# A stand-in for the Datadog agent service: records its state and reports it.
param([ValidateSet('start', 'stop', 'status', 'version')][string]$Command = 'status')
$state = Join-Path $env:ProgramData 'Datadog\state'
switch ($Command) {
    'start' { Set-Content -Path $state -Value 'running' }
    'stop' { Set-Content -Path $state -Value 'stopped' }
    'status' { Write-Output "datadog-agent 6.9.0: $(Get-Content -ErrorAction SilentlyContinue $state)" }
    'version' { Write-Output '6.9.0' }
}
