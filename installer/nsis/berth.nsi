; Berth's Windows installer (NSIS 3). Built on Linux by `make package`
; (installer/nsis: makensis with the defines below); per-user, no UAC prompt.
;
;   makensis -DVERSION=1.2.3 -DVIVERSION=1.2.3.0 -DSRC=stage -DOUTFILE=berth-setup.exe berth.nsi
;
; SRC holds the install tree: bin\berth.exe, bin\berth-desktop.exe and
; share\berth\guest\amd64\{vmlinuz,initrd.img,wsl-rootfs.tar.gz}; hostd finds
; the guest next to its binary (..\share\berth\guest\ARCH).

Unicode true
!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "WinVer.nsh"
!include "x64.nsh"

!ifndef VERSION | VIVERSION | SRC | OUTFILE
  !error "define VERSION, VIVERSION (N.N.N.N), SRC and OUTFILE"
!endif

!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Berth"

Name "Berth"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\Berth"
InstallDirRegKey HKCU "Software\Berth" "InstallDir"
RequestExecutionLevel user
!ifndef COMPRESSOR
  !define COMPRESSOR "lzma"
!endif
SetCompressor /SOLID ${COMPRESSOR}
ShowInstDetails show
ShowUninstDetails show

VIProductVersion "${VIVERSION}"
VIAddVersionKey "ProductName" "Berth"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "Berth installer: Linux containers in a small VM"
VIAddVersionKey "CompanyName" "Berth"
VIAddVersionKey "LegalCopyright" "Berth"

!ifdef ICON
  !define MUI_ICON "${ICON}"
  !define MUI_UNICON "${ICON}"
!endif
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\bin\berth-desktop.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Start Berth"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP "Berth needs 64-bit Windows."
    Abort
  ${EndIf}
  ${IfNot} ${AtLeastWin10}
    MessageBox MB_ICONSTOP "Berth needs Windows 10 or later (WSL 2)."
    Abort
  ${EndIf}
FunctionEnd

Section "Berth" SecCore
  SectionIn RO
  ; An older Berth may be running: its host agent holds the files.
  IfFileExists "$INSTDIR\bin\berth.exe" 0 +2
    ExecWait '"$INSTDIR\bin\berth.exe" stop' $0

  SetOutPath "$INSTDIR\bin"
  File "${SRC}\bin\berth.exe"
  File "${SRC}\bin\berth-desktop.exe"
  SetOutPath "$INSTDIR\share\berth\guest\amd64"
  File "${SRC}\share\berth\guest\amd64\vmlinuz"
  File "${SRC}\share\berth\guest\amd64\initrd.img"
  File "${SRC}\share\berth\guest\amd64\wsl-rootfs.tar.gz"
  File "${SRC}\share\berth\guest\amd64\manifest.json"
  File /nonfatal "${SRC}\share\berth\guest\amd64\vmlinux"
  ; The docker CLI and its buildx and compose plugins; `berth setup --docker`
  ; puts them to use only where the user has none.
  SetOutPath "$INSTDIR\docker"
  File "${SRC}\docker\docker.exe"
  SetOutPath "$INSTDIR\docker\cli-plugins"
  File "${SRC}\docker\cli-plugins\docker-buildx.exe"
  File "${SRC}\docker\cli-plugins\docker-compose.exe"

  SetOutPath "$INSTDIR"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateShortcut "$SMPROGRAMS\Berth.lnk" "$INSTDIR\bin\berth-desktop.exe"

  WriteRegStr HKCU "Software\Berth" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayName" "Berth"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINST_KEY}" "Publisher" "Berth"
  WriteRegStr HKCU "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\bin\berth-desktop.exe"
  WriteRegStr HKCU "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoRepair" 1

  ; The "berth" docker context (the current one is left as it is).
  ExecWait '"$INSTDIR\bin\berth.exe" setup --context' $0
  ${If} $0 != 0
    DetailPrint "berth setup --context failed ($0); run it later from a terminal"
  ${EndIf}
SectionEnd

Section "Add berth to PATH" SecPath
  ExecWait '"$INSTDIR\bin\berth.exe" setup --path' $0
  ${If} $0 != 0
    DetailPrint "berth setup --path failed ($0)"
  ${EndIf}
SectionEnd

Section "docker, docker buildx and docker compose" SecDocker
  ExecWait '"$INSTDIR\bin\berth.exe" setup --docker' $0
  ${If} $0 != 0
    DetailPrint "berth setup --docker failed ($0)"
  ${EndIf}
SectionEnd

Section "Start Berth when I sign in" SecLogin
  ExecWait '"$INSTDIR\bin\berth.exe" setup --start-at-login on' $0
SectionEnd

!insertmacro MUI_FUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${SecCore} "Berth: the desktop app, the berth CLI and the Linux guest (WSL 2 distro or QEMU)."
  !insertmacro MUI_DESCRIPTION_TEXT ${SecPath} "Run berth from any new terminal."
  !insertmacro MUI_DESCRIPTION_TEXT ${SecDocker} "The docker CLI with buildx and compose, where you have none (yours are left as they are)."
  !insertmacro MUI_DESCRIPTION_TEXT ${SecLogin} "Start Berth in the notification area when you sign in."
!insertmacro MUI_FUNCTION_DESCRIPTION_END

Section "Uninstall"
  ; Stop the host agent and its machine, then undo the setup.
  ExecWait '"$INSTDIR\bin\berth.exe" stop' $0
  ExecWait '"$INSTDIR\bin\berth.exe" setup --remove' $0
  MessageBox MB_YESNO|MB_ICONQUESTION "Also delete Berth's machine and its data (images, containers, volumes)?" /SD IDNO IDNO keepdata
    ExecWait '"$INSTDIR\bin\berth.exe" delete --force' $0
  keepdata:

  Delete "$SMPROGRAMS\Berth.lnk"
  Delete "$INSTDIR\bin\berth.exe"
  Delete "$INSTDIR\bin\berth-desktop.exe"
  RMDir "$INSTDIR\bin"
  Delete "$INSTDIR\docker\cli-plugins\docker-buildx.exe"
  Delete "$INSTDIR\docker\cli-plugins\docker-compose.exe"
  RMDir "$INSTDIR\docker\cli-plugins"
  Delete "$INSTDIR\docker\docker.exe"
  RMDir "$INSTDIR\docker"
  Delete "$INSTDIR\share\berth\guest\amd64\vmlinuz"
  Delete "$INSTDIR\share\berth\guest\amd64\initrd.img"
  Delete "$INSTDIR\share\berth\guest\amd64\wsl-rootfs.tar.gz"
  Delete "$INSTDIR\share\berth\guest\amd64\manifest.json"
  Delete "$INSTDIR\share\berth\guest\amd64\vmlinux"
  RMDir "$INSTDIR\share\berth\guest\amd64"
  RMDir "$INSTDIR\share\berth\guest"
  RMDir "$INSTDIR\share\berth"
  RMDir "$INSTDIR\share"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"

  DeleteRegKey HKCU "${UNINST_KEY}"
  DeleteRegKey HKCU "Software\Berth"
SectionEnd
