"""The operator window's look: a calm dark theme, large type, touch-sized controls.

Dark surfaces keep glare down under the enclosure's lights and let the verdict colours
stand out; every size is multiplied by ``ui.font_scale``.
"""

from __future__ import annotations

BACKGROUND = "#12171b"
SURFACE = "#1c2429"
SURFACE_RAISED = "#26313a"
BORDER = "#33414c"
TEXT = "#e8edf0"
TEXT_MUTED = "#9fb0bb"
ACCENT = "#2f6fd6"
ACCENT_PRESSED = "#2558ad"
LIKELY = "#f2b705"


def style_sheet(scale: float = 1.0) -> str:
    def px(value: float) -> str:
        return f"{round(value * scale)}px"

    return f"""
    QMainWindow, #central, #mainPage, #signInPage {{ background: {BACKGROUND}; }}
    QWidget {{ color: {TEXT}; }}
    QToolTip {{ color: {TEXT}; background: {SURFACE_RAISED}; border: 1px solid {BORDER}; }}

    #headerStation {{ color: {TEXT_MUTED}; font-size: {px(18)}; }}
    #headerItem {{ font-size: {px(24)}; font-weight: 600; }}
    #headerOperator {{ color: {TEXT_MUTED}; font-size: {px(18)}; }}
    #headerCount {{ font-size: {px(20)}; font-weight: 600; padding: {px(4)} {px(12)};
                    background: {SURFACE_RAISED}; border-radius: {px(6)}; }}
    #caption, #sectionHeading {{ color: {TEXT_MUTED}; font-size: {px(15)}; font-weight: 600;
                                 text-transform: uppercase; letter-spacing: 1px; }}

    #guidePage, #faultPanel {{ background: {SURFACE}; border: 1px solid {BORDER};
                               border-radius: {px(10)}; }}
    #guide {{ font-size: {px(26)}; line-height: 140%; }}
    #faultPanel {{ border: 2px solid #c2410c; }}
    #faultAudience {{ color: #ffb38a; font-size: {px(32)}; font-weight: 700; }}
    #faultKind {{ color: {TEXT_MUTED}; font-size: {px(18)}; font-weight: 600; }}
    #faultMessage {{ font-size: {px(23)}; }}
    #faultCapture {{ color: {TEXT_MUTED}; font-size: {px(16)}; }}

    #signInTitle {{ font-size: {px(44)}; font-weight: 700; }}
    #signInSubtitle {{ color: {TEXT_MUTED}; font-size: {px(20)}; }}
    #signInPrompt {{ font-size: {px(26)}; margin-top: {px(30)}; }}
    #signInMessage {{ color: #ffcf66; font-size: {px(20)}; }}

    QLineEdit {{ background: {SURFACE}; border: 2px solid {BORDER}; border-radius: {px(8)};
                 padding: 0 {px(14)}; font-size: {px(24)}; selection-background-color: {ACCENT}; }}
    QLineEdit:focus {{ border-color: {ACCENT}; }}
    QLineEdit:disabled {{ color: #5d6b74; background: #171d21; }}
    #badgeEntry {{ font-size: {px(32)}; }}

    #actionButton {{ background: {SURFACE_RAISED}; border: 1px solid {BORDER};
                     border-radius: {px(8)}; }}
    #actionButton:pressed {{ background: {BORDER}; }}
    #actionButton:disabled {{ background: #192024; border-color: #232c32; }}
    #actionButton[role="primary"] {{ background: {ACCENT}; border-color: {ACCENT}; }}
    #actionButton[role="primary"]:pressed {{ background: {ACCENT_PRESSED}; }}
    #actionButton[role="primary"]:disabled {{ background: #192024; border-color: #232c32; }}
    #actionButton[role="toggle"]:checked {{ background: #dfe9f8; border-color: #dfe9f8; }}
    #actionButton[marked="true"] {{ border: 2px solid {LIKELY}; }}

    QProgressBar {{ background: {SURFACE_RAISED}; border: none; border-radius: {px(5)}; }}
    QProgressBar::chunk {{ background: {ACCENT}; border-radius: {px(5)}; }}

    #statusBar {{ background: #0d1114; border-top: 1px solid {BORDER}; }}
    #statusBar QLabel {{ font-size: {px(16)}; color: {TEXT_MUTED}; }}
    #statusBar #statusNotice {{ color: #ffcf66; }}
    """
