; Inno Setup 6 script: RadviewSetup-<version>.exe from dist\radview\ built ON WINDOWS.
; UNTESTED: written on Linux; see installer\WINDOWS.md for the build steps and what must be
; checked on a Windows machine before giving it to a clinic.
;   1. .venv\Scripts\pip install -e ".[ai,package]"
;   2. .venv\Scripts\python -m PyInstaller --noconfirm --distpath dist --workpath build\pyinstaller installer\radview.spec
;   3. "C:\Program Files (x86)\Inno Setup 6\ISCC.exe" /DMyAppVersion=0.1.0 installer\radview.iss

#ifndef MyAppVersion
  #define MyAppVersion "0.1.0"
#endif
#define MyAppName "radview"
#define MyAppExe "radview.exe"

[Setup]
AppId={{6C0F3C52-6E0B-4B7B-9E43-2F7B2C1D9A11}
AppName={#MyAppName}
AppVersion={#MyAppVersion}
AppPublisher=radview maintainers
AppComments=Offline DICOM radiology viewer with an AI assistant (research use only)
DefaultDirName={autopf}\radview
DefaultGroupName=radview
DisableProgramGroupPage=yes
; 64-bit only (TensorFlow, VTK and Qt wheels are x64)
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequiredOverridesAllowed=dialog
OutputDir=..\dist
OutputBaseFilename=RadviewSetup-{#MyAppVersion}
SetupIconFile=..\resources\icons\radview.ico
UninstallDisplayIcon={app}\{#MyAppExe}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern

[Files]
Source: "..\dist\radview\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\radview"; Filename: "{app}\{#MyAppExe}"
Name: "{autoprograms}\radview self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\{#MyAppExe}"" --self-test"
Name: "{autodesktop}\radview"; Filename: "{app}\{#MyAppExe}"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Run]
Filename: "{app}\{#MyAppExe}"; Parameters: "--self-test"; Description: "Run the self-test now"; Flags: postinstall nowait skipifsilent unchecked
